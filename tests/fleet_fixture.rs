//! The real-daemon Salt fleet fixture itself: a master and three minions on loopback,
//! each key accepted, each minion answering through the master.

use crate::common::fleet::{tools, Fleet};

#[test]
fn three_minions_answer_through_one_master() {
    let Some(tools) = tools() else { return };
    let mut fleet = Fleet::prepare(&tools);
    fleet.start_master();
    let ids = ["m1", "m2", "m3"];
    fleet.add_minion("m1", "");
    fleet.add_minion("m2", "");
    fleet.add_minion("m3", "grains:\n  environment: production\n");
    fleet.wait_pending(&ids);
    for id in ids {
        // What the user reads on the minion is what the master's salt-key prints.
        let out = fleet
            .salt_key(&["--out", "json", "-f", id])
            .output()
            .unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let finger = shown["minions_pre"][id].as_str().unwrap().replace(':', "");
        assert_eq!(finger, fleet.minion_fingerprint(id), "{id}");
        fleet.accept(id);
    }
    fleet.wait_ready(&ids);
    let out = fleet
        .salt(&["--out", "json", "--static", "-L", "m1,m2,m3", "test.ping"])
        .output()
        .unwrap();
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    for id in ids {
        assert_eq!(answers[id], serde_json::Value::Bool(true), "{answers}");
    }
    // A pending key is moved as is: the master's accepted key is the one fingerprinted.
    assert!(!fleet.pending_key_path("m1").exists());
}

/// A master restarted (to read a changed drop-in) gets its minions back by itself.
#[test]
fn minions_come_back_after_the_master_restarts() {
    let Some(tools) = tools() else { return };
    let mut fleet = Fleet::prepare(&tools);
    fleet.start_master();
    fleet.add_minion("r1", "");
    fleet.accept("r1");
    fleet.wait_ready(&["r1"]);
    fleet.restart_master();
    fleet.wait_ready(&["r1"]);
    let out = fleet
        .salt(&["--out", "json", "--static", "-L", "r1", "test.ping"])
        .output()
        .unwrap();
    let answers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answers["r1"], serde_json::Value::Bool(true), "{answers}");
}
