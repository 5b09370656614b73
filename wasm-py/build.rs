// Empty: it exists so that the [build-dependencies] of Cargo.toml (a
// feature-unification hack, see there) take part in the build.
fn main() {}
