//! evalwatch: keeps watch over AI systems in production.

fn main() {
    println!("evalwatch");
}
