// `sqlx::migrate!` embeds the migration files at compile time but cannot tell Cargo about a file
// added to the folder: without this, a cached build would miss a new migration.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
