//! Builds `ebpf-prog` for the BPF target with the nightly toolchain and puts
//! the object in OUT_DIR, where `loader` embeds it.

fn main() -> anyhow::Result<()> {
    let root_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ebpf-prog");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "ebpf-prog",
            root_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
