//! Ingest as a separate OS process, so that tests can SIGKILL it.

use std::process::{Child, Command, Stdio};

use crate::helpers::TestEnv;

pub struct IngestProcess {
    child: Child,
}

impl IngestProcess {
    pub fn start(env: &TestEnv) -> IngestProcess {
        Self::start_named(env, "ingest")
    }

    /// `name` becomes `DV_INSTANCE_ID` (the owner recorded with each commit).
    pub fn start_named(env: &TestEnv, name: &str) -> IngestProcess {
        Self::start_with(env, name, &[])
    }

    /// With these environment variables besides the test's own.
    pub fn start_with(env: &TestEnv, name: &str, extra: &[(String, String)]) -> IngestProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_decision-views"))
            .arg("ingest")
            .env_clear()
            .envs(env.env_vars())
            .env("DV_INSTANCE_ID", name)
            // librdkafka debugging passes through, e.g. DV_KAFKA_CONSUMER_DEBUG=cgrp.
            .envs(
                std::env::vars().filter(|(k, _)| k.starts_with("DV_KAFKA_CONSUMER_") || k == "DV_TEST_CHILD_RUST_LOG"),
            )
            .envs(extra.iter().cloned())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the ingest process");
        IngestProcess { child }
    }

    /// SIGKILL: no shutdown path runs, the batch in flight dies wherever it is.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// SIGTERM and wait: the graceful path.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY-free: libc::kill is a plain syscall wrapper; the pid is our own child's.
        let rc = unsafe_free_kill(pid, libc::SIGTERM);
        assert_eq!(rc, 0, "kill(SIGTERM)");
        self.child.wait().expect("reap")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// `kill(2)` through the `kill` command: the workspace forbids `unsafe`, even in tests.
fn unsafe_free_kill(pid: libc::pid_t, signal: i32) -> i32 {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("run kill");
    if status.success() {
        0
    } else {
        -1
    }
}

impl Drop for IngestProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small deterministic generator for the random moments (seed printed by the tests).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}
