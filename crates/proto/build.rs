//! Compiles the repository's `proto/` into Rust with tonic-prost-build, through protox, so
//! that building chanlayer needs no system `protoc`. Also writes the encoded file descriptor
//! set that the server's reflection service serves.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The .proto files live at the repository's root, shared with the Python and Node clients.
    let root = "../../proto";
    let proto = format!("{root}/chanlayer/v1/channel_layer.proto");
    println!("cargo:rerun-if-changed={root}");

    let fds = protox::compile([proto], [root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("chanlayer_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;

    tonic_prost_build::configure()
        .bytes(".chanlayer.v1")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
