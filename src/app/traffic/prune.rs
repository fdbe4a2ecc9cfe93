//! `evalwatch prune`.

pub fn run(_ctx: &crate::app::Ctx, _args: &crate::cli::traffic::PruneArgs) -> anyhow::Result<u8> {
    Ok(0)
}
