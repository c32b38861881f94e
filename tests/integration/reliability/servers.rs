//! Private servers the reliability tests may stop and restart without disturbing the tests
//! that run beside them on the shared ones: a tansu broker, a PostgreSQL cluster, a Redis.
//! Each lives in its own temporary directory, listens on 127.0.0.1 only, and is stopped and
//! removed on drop (also when the test panics).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port below the ephemeral range (32768+), so that while a server is down
/// no outgoing connection can be given its port and its restart can bind it again.
pub fn free_port() -> u16 {
    for _ in 0..1_000 {
        let port = 20_000 + (uuid::Uuid::new_v4().as_u128() % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

fn wait_listening(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening on {port}:\n{}", tail(log));
        }
        assert!(Instant::now() < deadline, "{what} not listening on {port} within 30 s:\n{}", tail(log));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a server's log, for failure messages.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A directory under the system temp dir, removed (best effort) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("dv-rel-{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]));
        std::fs::create_dir_all(&path).expect("create a temp dir");
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failing test keeps its servers' logs and data for inspection.
            eprintln!("[reliability] test failed; keeping {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `kill -SIG pid`: the workspace forbids `unsafe`, so no libc::kill.
fn signal(child: &Child, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]).status();
}

/// SIGTERM, then SIGKILL if it has not exited within `grace`.
fn terminate(child: &mut Child, grace: Duration) -> ExitStatus {
    signal(child, "TERM");
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait().expect("reap")
}

/// A tansu broker on its persistent SQLite engine: a restart keeps topics and messages.
pub struct PrivateBroker {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    /// SASL (SCRAM) required of clients from the next start (`require_sasl`).
    authentication: bool,
}

fn tansu() -> String {
    std::env::var("DV_TEST_TANSU").unwrap_or_else(|_| {
        PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cargo/bin/tansu").display().to_string()
    })
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let mut b =
            PrivateBroker { dir: TempDir::new("broker"), port: free_port(), child: None, authentication: false };
        b.spawn();
        b
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Starts the broker on the same port and database file as before.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "broker already running");
        let tansu = tansu();
        let url = format!("tcp://{}", self.addr());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log()).expect("broker log");
        let mut child = Command::new(&tansu)
            .args(["broker", "--cluster-id", "reliability", "--storage-engine", "sqlite://tansu.db"])
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(self.authentication.then_some("--authentication"))
            .current_dir(self.dir.path())
            // tansu reads these as fallbacks for its flags: only the flags above count.
            .env_remove("CLUSTER_ID")
            .env_remove("STORAGE_ENGINE")
            .env_remove("LISTENER_URL")
            .env_remove("ADVERTISED_LISTENER_URL")
            .env("RUST_LOG", "warn")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {tansu}: {e}"));
        wait_listening(self.port, "tansu", &mut child, &self.log());
        self.child = Some(child);
    }

    /// Creates a SCRAM user (`scram256` or `scram512`), then restarts the broker requiring SASL
    /// of every client. (tansu 0.6.0 creates users only while authentication is off.)
    pub fn require_sasl(&mut self, mechanism: &str, user: &str, password: &str) {
        let out = Command::new(tansu())
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://{}", self.addr()),
                "--mechanism",
                mechanism,
                user,
                password,
            ])
            .output()
            .expect("run tansu user create");
        assert!(out.status.success(), "tansu user create: {}", String::from_utf8_lossy(&out.stderr));
        self.terminate();
        self.authentication = true;
        self.spawn();
    }

    /// SIGKILL: the broker dies wherever it is (in-flight produce requests unanswered).
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("broker running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }

    /// SIGTERM: the broker's own shutdown path (SIGKILL after 20 s).
    pub fn terminate(&mut self) -> ExitStatus {
        terminate(self.child.as_mut().expect("broker running"), Duration::from_secs(20));
        self.child.take().unwrap().wait().expect("reap")
    }

    pub fn log_tail(&self) -> String {
        tail(&self.log())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A PostgreSQL cluster of its own (initdb into a temp dir, trust auth on 127.0.0.1). initdb
/// and the server refuse to run as root, so as root every command runs as the `postgres` OS
/// user through `runuser` (the temp dir is handed to that user first).
pub struct PrivatePostgres {
    dir: TempDir,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
    /// Server options beyond the port and addresses (`-c name=value …`).
    extra: String,
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        Self::start_with(|_| String::new())
    }

    /// `options` gets the cluster's directory (owned by the server's user) and returns server
    /// options to add, e.g. TLS files it wrote there.
    pub fn start_with(options: impl FnOnce(&Path) -> String) -> PrivatePostgres {
        let mut pg = PrivatePostgres {
            dir: TempDir::new("pg"),
            port: free_port(),
            bin: pg_bin(),
            as_postgres: is_root(),
            extra: String::new(),
        };
        pg.extra = options(pg.dir.path());
        if pg.as_postgres {
            let ok = Command::new("chown").args(["postgres:", &pg.dir.path().display().to_string()]).status();
            assert!(ok.is_ok_and(|s| s.success()), "chown the cluster dir to postgres");
        }
        let data = pg.data().display().to_string();
        // -N: no fsync at initdb (the server itself runs with the default fsync=on).
        pg.run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-N"]);
        pg.pg_ctl(&["start"]);
        pg
    }

    /// The server URL (no database), what `Servers::postgres` expects.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl restart -m immediate`: the postmaster is SIGQUIT-ed, every backend exits without
    /// finishing its transaction (a crash as far as clients see), the restart replays the WAL.
    pub fn restart_immediate(&self) {
        self.pg_ctl(&["restart", "-m", "immediate"]);
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.data().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=40 {}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let mut args: Vec<&str> = action.to_vec();
        args.extend(["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &opts]);
        self.run("pg_ctl", &args);
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bin.join(program).display().to_string();
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", &exe]);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd.args(args).current_dir(self.dir.path()).stdin(Stdio::null()).output().expect("run");
        assert!(
            out.status.success(),
            "{program} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            tail(&self.dir.path().join("server.log"))
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Best effort, never a panic in drop (the test may already be unwinding).
        let data = self.data().display().to_string();
        let exe = self.bin.join("pg_ctl").display().to_string();
        let args = ["stop", "-D", &data, "-m", "immediate", "-w", "-t", "30"];
        let _ = if self.as_postgres {
            Command::new("runuser").args(["-u", "postgres", "--", &exe]).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// The server binaries: `DV_TEST_PG_BIN`, else the newest /usr/lib/postgresql/<major>/bin.
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("DV_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut majors: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (or set DV_TEST_PG_BIN)")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    majors.sort_unstable();
    let major = majors.last().expect("a PostgreSQL major version");
    PathBuf::from(format!("/usr/lib/postgresql/{major}/bin"))
}

/// A Redis without persistence: a restart comes back empty, like a cache node replaced.
pub struct PrivateRedis {
    dir: TempDir,
    pub port: u16,
    child: Option<Child>,
    /// (certificate, key) files: TLS only, on `port`.
    tls: Option<(PathBuf, PathBuf)>,
}

impl PrivateRedis {
    pub fn start() -> PrivateRedis {
        let mut r = PrivateRedis { dir: TempDir::new("redis"), port: free_port(), child: None, tls: None };
        r.spawn();
        r
    }

    /// A Redis that speaks TLS only, with a certificate `make_tls` writes into its directory.
    pub fn start_tls(make_tls: impl FnOnce(&Path) -> (PathBuf, PathBuf)) -> PrivateRedis {
        let dir = TempDir::new("redis");
        let tls = Some(make_tls(dir.path()));
        let mut r = PrivateRedis { dir, port: free_port(), child: None, tls };
        r.spawn();
        r
    }

    /// `rediss://` with TLS; `#insecure`: the test's certificate is self-signed.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("rediss://127.0.0.1:{}/#insecure", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis already running");
        let log = self.dir.path().join("redis.log");
        let port = self.port.to_string();
        let ports: Vec<String> = match &self.tls {
            Some((cert, key)) => [
                "--port",
                "0",
                "--tls-port",
                &port,
                "--tls-auth-clients",
                "no",
                "--tls-cert-file",
                &cert.display().to_string(),
                "--tls-key-file",
                &key.display().to_string(),
                "--tls-ca-cert-file",
                &cert.display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
            None => vec!["--port".into(), port.clone()],
        };
        let mut child = Command::new(std::env::var("DV_TEST_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into()))
            .args(&ports)
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.path().display().to_string(), "--logfile", &log.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        wait_listening(self.port, "redis-server", &mut child, &log);
        self.child = Some(child);
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("redis running");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
