//! Loading torchvision checkpoints (ResNets and ViTs): every problem is an
//! `Err` naming the tensor (or the file), and a save/load round trip is
//! exact.
#![cfg(feature = "resnet")]

mod common;

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn_explainable::Error;
use burn_explainable::models::resnet::{ResNet, ResNetConfig};
use burn_explainable::models::vit::{Vit, VitConfig};
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

fn load_error<T>(result: Result<T, Error>) -> String {
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

/// The fixture ViT's configuration, read from its checkpoint's shapes.
fn vit_config(entries: &Entries) -> VitConfig {
    let shape = |name: &str| -> Vec<usize> {
        let (_, e, _) = entries.iter().find(|(n, _, _)| n == name).unwrap();
        e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    };
    let patch = shape("conv_proj.weight");
    let tokens = shape("encoder.pos_embedding")[1];
    let grid = ((tokens - 1) as f64).sqrt() as usize;
    let layers = entries
        .iter()
        .filter(|(n, _, _)| n.ends_with(".ln_1.weight"))
        .count();
    let width = patch[0];
    // The fixture's heads: its attention weights' second axis.
    let heads = Npz::open(fixtures_dir().join("models").join("vit_reference.npz"))
        .get("attn.encoder_layer_0")
        .shape[1];
    VitConfig::new(
        grid * patch[2],
        patch[2],
        layers,
        heads,
        width,
        shape("encoder.layers.encoder_layer_0.mlp.0.bias")[0],
        shape("heads.head.bias")[0],
    )
    .with_in_channels(patch[1])
}

fn vit_edited(name: &str, edit: impl FnOnce(&mut Entries)) -> Result<Vit, Error> {
    let (mut entries, metadata) =
        read_safetensors(&fixtures_dir().join("models").join("vit.safetensors"));
    let config = vit_config(&entries);
    edit(&mut entries);
    let path = scratch(name);
    write_safetensors(&path, &entries, metadata);
    let result = Vit::load(&config, &path, &device());
    std::fs::remove_file(path).ok();
    result
}

#[test]
#[cfg_attr(
    not(fixtures),
    ignore = "needs the reference fixtures (BURN_EXPLAINABLE_FIXTURES)"
)]
fn vit_problems_are_named_in_torchvision_spelling() {
    let device = device();
    let x =
        Npz::open(fixtures_dir().join("models").join("inputs.npz")).tensor::<4>("x_vit", &device);
    let reference = vit_edited("vit.safetensors", |_| {})
        .unwrap()
        .valid()
        .forward(x.clone());
    let missing = "encoder.layers.encoder_layer_1.mlp.3.weight";
    let msg = load_error(vit_edited("vit-missing.safetensors", |e| {
        e.retain(|(n, _, _)| n != missing)
    }));
    assert!(msg.contains(missing), "{msg}");
    let msg = load_error(vit_edited("vit-extra.safetensors", |e| {
        let (_, entry, bytes) = e
            .iter()
            .find(|(n, _, _)| n == "heads.head.bias")
            .unwrap()
            .clone();
        e.push(("heads.pre_logits.bias".into(), entry, bytes));
    }));
    assert!(msg.contains("heads.pre_logits.bias"), "{msg}");
    let shaped = "encoder.layers.encoder_layer_0.self_attention.in_proj_weight";
    let msg = load_error(vit_edited("vit-shape.safetensors", |e| {
        let (_, entry, _) = e.iter_mut().find(|(n, _, _)| n == shaped).unwrap();
        let shape = entry["shape"].as_array().unwrap().clone();
        entry.insert(
            "shape".into(),
            Value::from(vec![shape[1].clone(), shape[0].clone()]),
        );
    }));
    assert!(msg.contains("in_proj_weight"), "{msg}");
    // Checkpoints saved before torchvision renamed the MLP layers load too.
    let legacy = vit_edited("vit-legacy.safetensors", |e| {
        for (n, _, _) in e.iter_mut() {
            *n = n
                .replace(".mlp.0.", ".mlp.linear_1.")
                .replace(".mlp.3.", ".mlp.linear_2.");
        }
    })
    .unwrap();
    let (_, a) = values(legacy.valid().forward(x));
    let (_, b) = values(reference);
    assert_eq!(a, b, "legacy MLP names load the same weights");
}

#[test]
fn a_vit_b_16_shaped_checkpoint_round_trips() {
    let device = device();
    let config = VitConfig::vit_b_16(1000);
    let model = config.init(&device).unwrap();
    let path = scratch("vit_b_16.safetensors");
    model.save_safetensors(&path).unwrap();
    let again = Vit::load(&config, &path, &device).unwrap();
    std::fs::remove_file(&path).ok();
    let x = Tensor::<4>::random(
        [1, 3, 224, 224],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let (_, a) = values(model.valid().forward(x.clone()));
    let (_, b) = values(again.valid().forward(x));
    assert_eq!(a, b);
}
