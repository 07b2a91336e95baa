//! Loading torchvision checkpoints: every problem is an `Err` naming the
//! tensor (or the file), and a save/load round trip is exact.
#![cfg(feature = "resnet")]

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_explainable::Error;
use burn_explainable::models::resnet::{ResNet, ResNetConfig};
use common::{Npz, device, fixtures_dir, values};
use serde_json::{Map, Value};

fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join("resnet").join(name)
}

fn r18() -> ResNetConfig {
    let classes = Npz::resnet_fixture("resnet18_reference.npz")
        .get("logits")
        .shape[1];
    ResNetConfig::resnet18(classes)
}

/// A scratch file unique to this test process and name.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("burn-explainable-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The tensors of a `.safetensors` file: (name, header entry, bytes).
type Entries = Vec<(String, Map<String, Value>, Vec<u8>)>;

fn read_safetensors(path: &Path) -> (Entries, Option<Value>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Map<String, Value> = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    let mut metadata = None;
    let mut entries = Vec::new();
    for (name, v) in header {
        if name == "__metadata__" {
            metadata = Some(v);
            continue;
        }
        let entry = v.as_object().unwrap().clone();
        let offsets: Vec<usize> = entry["data_offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_u64().unwrap() as usize)
            .collect();
        entries.push((name, entry, data[offsets[0]..offsets[1]].to_vec()));
    }
    (entries, metadata)
}

fn write_safetensors(path: &Path, entries: &Entries, metadata: Option<Value>) {
    let mut header = Map::new();
    if let Some(m) = metadata {
        header.insert("__metadata__".into(), m);
    }
    let mut data = Vec::new();
    for (name, entry, bytes) in entries {
        let mut entry = entry.clone();
        entry.insert(
            "data_offsets".into(),
            Value::from(vec![data.len(), data.len() + bytes.len()]),
        );
        header.insert(name.clone(), Value::Object(entry));
        data.extend_from_slice(bytes);
    }
    let mut json = serde_json::to_vec(&header).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(data);
    std::fs::write(path, out).unwrap();
}

/// resnet18.safetensors with `edit` applied, loaded as ResNet-18.
fn load_edited(name: &str, edit: impl FnOnce(&mut Entries)) -> Result<ResNet, Error> {
    let (mut entries, metadata) = read_safetensors(&fixture("resnet18.safetensors"));
    edit(&mut entries);
    let path = scratch(name);
    write_safetensors(&path, &entries, metadata);
    let result = ResNet::load(&r18(), &path, &device());
    std::fs::remove_file(path).ok();
    result
}

fn load_error(result: Result<ResNet, Error>) -> String {
    match result {
        Err(e @ (Error::Load { .. } | Error::Store { .. } | Error::Io { .. })) => {
            // The message names the file; the cause stays reachable.
            let cause = std::error::Error::source(&e).map(|s| format!(": {s}"));
            format!("{e}{}", cause.unwrap_or_default())
        }
        Err(other) => panic!("expected a load error, got {other:?}"),
        Ok(_) => panic!("expected a load error, the file loaded"),
    }
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn the_rewritten_file_itself_loads() {
    // The editing helper is faithful: an unedited rewrite loads.
    load_edited("identity.safetensors", |_| {}).unwrap();
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn a_missing_tensor_is_named() {
    let msg = load_error(load_edited("missing.safetensors", |e| {
        e.retain(|(n, _, _)| n != "layer3.1.bn2.running_var")
    }));
    assert!(msg.contains("layer3.1.bn2.running_var"), "{msg}");
    let msg = load_error(load_edited("missing-fc.safetensors", |e| {
        e.retain(|(n, _, _)| n != "fc.weight")
    }));
    assert!(msg.contains("fc.weight"), "{msg}");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn an_extra_tensor_is_named() {
    let msg = load_error(load_edited("extra.safetensors", |e| {
        let (_, entry, bytes) = e.iter().find(|(n, _, _)| n == "fc.bias").unwrap().clone();
        e.push(("fc2.bias".into(), entry, bytes));
    }));
    assert!(msg.contains("fc2.bias"), "{msg}");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn a_tensor_of_the_wrong_shape_is_named() {
    let msg = load_error(load_edited("shape.safetensors", |e| {
        let (_, entry, bytes) = e
            .iter_mut()
            .find(|(n, _, _)| n == "layer2.0.conv1.weight")
            .unwrap();
        // [128, 64, 3, 3] → [64, 128, 3, 3]: same byte count, wrong shape.
        let shape = entry["shape"].as_array().unwrap().clone();
        entry.insert(
            "shape".into(),
            Value::from(vec![
                shape[1].clone(),
                shape[0].clone(),
                shape[2].clone(),
                shape[3].clone(),
            ]),
        );
        assert_eq!(bytes.len(), 128 * 64 * 9 * 4);
    }));
    assert!(msg.contains("layer2.0.conv1"), "{msg}");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn the_wrong_architecture_is_an_error_naming_a_tensor() {
    // A ResNet-18 file is not a ResNet-34: layer1.2 etc. are missing.
    let classes = r18().num_classes;
    let e = ResNet::load(
        &ResNetConfig::resnet34(classes),
        fixture("resnet18.safetensors"),
        &device(),
    );
    let msg = load_error(e);
    assert!(msg.contains("layer1.2.bn1.weight"), "{msg}");
    // The bottleneck checkpoint is not a ResNet-18 (shapes and conv3 keys differ).
    let msg = load_error(ResNet::load(&r18(), fixture("bottleneck.pth"), &device()));
    assert!(msg.contains("layer1.0."), "{msg}");
    let msg = load_error(ResNet::load(
        &r18(),
        fixture("bottleneck.safetensors"),
        &device(),
    ));
    assert!(msg.contains("layer1.0."), "{msg}");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn truncated_and_absent_files_are_errors_naming_the_file() {
    for name in ["bottleneck.pth", "resnet18.safetensors"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        let path = scratch(&format!("truncated-{name}"));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = ResNet::load(&r18(), &path, &device());
        std::fs::remove_file(&path).ok();
        let msg = load_error(e);
        assert!(msg.contains("truncated-"), "{msg}");
    }
    let absent = ResNet::load(&r18(), scratch("absent.safetensors"), &device());
    assert!(matches!(absent, Err(Error::Io { .. })), "{absent:?}");
    let msg = load_error(absent);
    assert!(msg.contains("absent.safetensors"), "{msg}");
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn save_then_load_gives_identical_logits() {
    let device = device();
    let model = ResNet::load(&r18(), fixture("resnet18.safetensors"), &device).unwrap();
    let path = scratch("roundtrip.safetensors");
    model.save_safetensors(&path).unwrap();
    let again = ResNet::load(&r18(), &path, &device).unwrap();
    // The written file has torchvision's keys, as the original.
    let (written, _) = read_safetensors(&path);
    let (original, _) = read_safetensors(&fixture("resnet18.safetensors"));
    let names = |e: &Entries| {
        let mut n: Vec<String> = e.iter().map(|(n, _, _)| n.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&written), names(&original));
    std::fs::remove_file(&path).ok();
    let x = Npz::resnet_fixture("inputs.npz").tensor::<4>("x", &device);
    let (_, a) = values(model.valid().forward(x.clone()));
    let (_, b) = values(again.valid().forward(x));
    assert_eq!(a, b);
}
