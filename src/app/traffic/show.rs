//! `evalwatch traffic`.

pub fn run(_ctx: &crate::app::Ctx, _args: &crate::cli::traffic::TrafficArgs) -> anyhow::Result<u8> {
    Ok(0)
}
