//! Compiles the service contracts without a system `protoc`, and writes one
//! file descriptor set per package so each service can serve reflection for
//! its own API only.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PACKAGES: &[(&str, &str)] = &[
    ("eligibility", "creneau/eligibility/v1/eligibility.proto"),
    ("centre_directory", "creneau/centre_directory/v1/centre_directory.proto"),
    ("slot_inventory", "creneau/slot_inventory/v1/slot_inventory.proto"),
    ("notification", "creneau/notification/v1/notification.proto"),
    ("operations", "creneau/operations/v1/operations.proto"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(env::var("OUT_DIR")?);
    for (name, file) in PACKAGES {
        // tonic-prost-build does not emit these itself.
        println!("cargo:rerun-if-changed={file}");
        let fds = protox::compile([file], ["."])?;
        fs::write(out.join(format!("{name}_descriptor.bin")), fds.encode_to_vec())?;
        tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    }
    Ok(())
}
