//! Replays the committed corpus through the fuzz targets' bodies, so that the seeds and
//! every crash input once found are exercised by `cargo nextest run`: a decoder change
//! that panics on one of them, or that turns a `valid-*` seed into a refusal (or an
//! `invalid-*` one into an acceptance), fails here.

use std::path::{Path, PathBuf};

use fuzz::{Outcome, TARGETS};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable folder").path())
        .collect();
    files.sort();
    files
}

/// What a seed's name says its target must make of it.
fn expected_of(name: &str) -> Outcome {
    if name.starts_with("valid-") {
        Outcome::Accepted
    } else if name.starts_with("invalid-") {
        Outcome::Refused
    } else {
        panic!("{name}: a seed is named valid-* or invalid-*");
    }
}

#[test]
fn every_corpus_file_replays_as_its_name_says() {
    for target in TARGETS {
        let dir = crate_dir().join("corpus").join(target.name);
        let seeds = files(&dir);
        assert!(!seeds.is_empty(), "{} has no seed", dir.display());
        for path in seeds {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let expected = expected_of(&name);
            let data = std::fs::read(&path).unwrap();
            assert_eq!(
                (target.body)(&data),
                expected,
                "{} through {}",
                path.display(),
                target.body_path
            );
        }
    }
}

#[test]
fn every_generated_seed_replays_as_its_name_says() {
    for (name, data) in fuzz::csr::generated_seeds() {
        assert_eq!(
            fuzz::csr::enrollment_csr(&data),
            expected_of(name),
            "{name}"
        );
    }
}

/// Only with every target built (the default features).
#[cfg(feature = "gateway")]
#[test]
fn every_target_has_a_binary_and_every_corpus_folder_a_target() {
    use std::collections::BTreeSet;

    let manifest = std::fs::read_to_string(crate_dir().join("targets/Cargo.toml")).unwrap();
    for target in TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "targets/Cargo.toml has no [[bin]] {}",
            target.name
        );
        let binary = crate_dir()
            .join("targets/fuzz_targets")
            .join(format!("{}.rs", target.name));
        let text = std::fs::read_to_string(&binary)
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        assert!(
            text.contains(&format!("fuzz::{}(data)", target.body_path)),
            "{} does not call fuzz::{}",
            binary.display(),
            target.body_path
        );
    }
    let names: BTreeSet<String> = TARGETS.iter().map(|t| t.name.to_owned()).collect();
    let folders: BTreeSet<String> = files(&crate_dir().join("corpus"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, names, "one corpus folder per target");
    let binaries: BTreeSet<String> = files(&crate_dir().join("targets/fuzz_targets"))
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(binaries, names, "one binary per target");
}
