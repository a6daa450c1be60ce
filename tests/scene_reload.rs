//! Live reload: a bad edit is refused with its errors and the old scenes keep
//! applying; a good edit takes effect without a restart.

mod support;

use std::time::Duration;

use studiod::command::{Command, ErrorCode};
use support::{dmx16, dmx8, Booth};

#[tokio::test]
async fn bad_edit_is_refused_and_good_edit_takes_effect() {
    let b = Booth::start().await;
    let scene = b.dir.path().join("scenes/flash-sale.toml");
    let original = std::fs::read_to_string(&scene).unwrap();

    // A bad edit: one value out of range.
    std::fs::write(&scene, original.replace("[light.key]\nintensity = 1.0", "[light.key]\nintensity = 2.0")).unwrap();
    let out = b.exec(Command::Reload).await;
    let err = out.error.expect("reload refused");
    assert_eq!(err.code, ErrorCode::SceneInvalid);
    assert!(err.message.contains("flash-sale.toml:14:13: fixture `key`: `intensity` must be 0.0–1.0"), "{}", err.message);
    // The old scene still applies, with its old values.
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    b.frame_where(Duration::from_secs(2), "old flash-sale key at full", |d| d[..2] == dmx16(1.0)).await;

    // A good edit: key at half, and a new scene file.
    std::fs::write(&scene, original.replace("[light.key]\nintensity = 1.0", "[light.key]\nintensity = 0.5")).unwrap();
    std::fs::write(b.dir.path().join("scenes/giveaway.toml"), "label = \"Giveaway\"\n[light.product]\nintensity = 0.25\n").unwrap();
    let out = b.exec(Command::Reload).await;
    assert!(out.ok, "{out:?}");
    // Only scenes changed: the device actors keep running (cameras are not
    // re-addressed, the lights' sockets stay).
    assert_eq!(out.data.as_ref().unwrap()["devices_restarted"], false, "{out:?}");
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    b.frame_where(Duration::from_secs(2), "edited flash-sale key at half", |d| d[..2] == dmx16(0.5)).await;
    assert!(b.apply("giveaway", Some(0)).await.ok);
    b.frame_where(Duration::from_secs(2), "giveaway product light", |d| d[13..15] == dmx16(0.25)).await;
}

#[tokio::test]
async fn put_scene_persists_atomically_and_applies() {
    let b = Booth::start().await;
    let toml =
        "label = \"Hero shot\"\nfade_ms = 0\n[camera.front]\npan = 12.5\ntilt = 3.0\nzoom = 2.0\n[light.backdrop]\ncolor = \"#00ff00\"\n";
    let out = b.exec(Command::PutScene { scene: "hero-shot".into(), toml: toml.into() }).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(std::fs::read_to_string(b.dir.path().join("scenes/hero-shot.toml")).unwrap(), toml);
    let leftovers: Vec<_> = std::fs::read_dir(b.dir.path().join("scenes"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let out = b.apply("hero-shot", None).await;
    assert!(out.ok, "{out:?}");
    b.frame_where(Duration::from_secs(2), "green backdrop", |d| d[15..18] == [0, 255, 0]).await;
    // generic-visca: 14.4 units/°.
    let st = b.chain.camera_state(1);
    assert_eq!((st.pan, st.tilt), (180, 43));
    // And the scene survives a reload (it is on disk, in the scenes folder).
    assert!(b.exec(Command::Reload).await.ok);
    assert!(b.exec(Command::DeleteScene { scene: "hero-shot".into() }).await.ok);
    assert!(!b.dir.path().join("scenes/hero-shot.toml").exists());
    assert_eq!(b.apply("hero-shot", None).await.error.map(|e| e.code), Some(ErrorCode::UnknownScene));
}

/// A reload that repatches a fixture restarts the device actors, and the
/// light then answers at its new address.
#[tokio::test]
async fn a_reload_that_changes_the_patch_restarts_the_devices_on_it() {
    let b = Booth::start().await;
    let original = std::fs::read_to_string(&b.config_path).unwrap();
    let hair = "name = \"hair\"\nprofile = \"generic-dimmer\"\nartnet = \"node1\"\naddress = 13\n";
    assert!(original.contains(hair), "the example booth's hair light moved");
    std::fs::write(&b.config_path, original.replace(hair, &hair.replace("address = 13", "address = 100"))).unwrap();
    let out = b.exec(Command::Reload).await;
    assert!(out.ok, "{out:?}");
    assert_eq!(out.data.as_ref().unwrap()["devices_restarted"], true, "{out:?}");
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    b.frame_where(Duration::from_secs(2), "hair at 0.8 on channel 100", |d| d[99] == dmx8(0.8) && d[12] == 0).await;
}

#[tokio::test]
async fn bad_config_on_reload_is_config_invalid_and_the_running_one_stays() {
    let b = Booth::start().await;
    let original = std::fs::read_to_string(&b.config_path).unwrap();
    // A typo in studiod.toml itself, not in a scene.
    std::fs::write(&b.config_path, format!("{original}\n[lightning]\nframe_rate = 44\n")).unwrap();
    let out = b.exec(Command::Reload).await;
    let err = out.error.expect("reload refused");
    assert_eq!(err.code, ErrorCode::ConfigInvalid, "{}", err.message);
    assert!(err.message.contains("unknown key `lightning`"), "{}", err.message);
    // Still running the previous configuration.
    assert!(b.apply("flash-sale", Some(0)).await.ok);
    b.frame_where(Duration::from_secs(2), "flash-sale key at full", |d| d[..2] == dmx16(1.0)).await;
}

/// `state.scenes_hash` as CONTRACT §5 defines it, computed here from the files.
fn expected_scenes_hash(dir: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    let mut h = Sha256::new();
    for (name, bytes) in files {
        h.update(name.as_bytes());
        h.update([0u8]);
        h.update(&bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn scenes_hash_follows_the_scene_set_and_the_same_bytes_are_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let b = Booth::start().await;
    let scenes = b.dir.path().join("scenes");
    let mut state = b.daemon().engine.state();
    let first = state.borrow().scenes_hash.clone();
    assert_eq!(first, expected_scenes_hash(&scenes));

    // The same bytes again (a roll-out retried): not rewritten, same hash.
    let path = scenes.join("flash-sale.toml");
    let inode = std::fs::metadata(&path).unwrap().ino();
    let same = std::fs::read_to_string(&path).unwrap();
    assert!(b.exec(Command::PutScene { scene: "flash-sale".into(), toml: same.clone() }).await.ok);
    assert_eq!(std::fs::metadata(&path).unwrap().ino(), inode, "rewritten although unchanged");
    assert_eq!(state.borrow_and_update().scenes_hash, first);

    // Different bytes: written (atomically: a new inode) and a new hash.
    let edited = same.replace("[light.key]\nintensity = 1.0", "[light.key]\nintensity = 0.5");
    assert_ne!(edited, same);
    assert!(b.exec(Command::PutScene { scene: "flash-sale".into(), toml: edited }).await.ok);
    assert_ne!(std::fs::metadata(&path).unwrap().ino(), inode);
    let st = support::wait_watch(&mut state, Duration::from_secs(2), "new scenes_hash", |s| s.scenes_hash != first).await;
    assert_eq!(st.scenes_hash, expected_scenes_hash(&scenes));
    // A deleted scene leaves the set too.
    assert!(b.exec(Command::DeleteScene { scene: "flash-sale".into() }).await.ok);
    let st = support::wait_watch(&mut state, Duration::from_secs(2), "hash after delete", |s| s.scenes_hash != st.scenes_hash).await;
    assert_eq!(st.scenes_hash, expected_scenes_hash(&scenes));
}
