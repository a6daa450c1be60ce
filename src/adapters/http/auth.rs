//! Who may do what: the creator's PIN and the technician's token (read from
//! files, never logged), server-side sessions behind an HttpOnly cookie,
//! CSRF tokens bound to sessions, and the PIN/token attempt limiter.
//!
//! Roles: a creator may read state and apply scenes; a technician may do
//! everything. A role whose secret file is not configured is disabled: its
//! login is refused with `role_disabled` (the daemon logs this once at start).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::HttpError;

/// Cookie carrying the session token.
pub const SESSION_COOKIE: &str = "studiod_session";
/// Header that must carry the session's CSRF token on state-changing requests
/// (and must be present, with any value, on login: a cross-site form cannot set it).
pub const CSRF_HEADER: &str = "x-studiod-csrf";
/// Longest PIN/token we even look at: bounds the comparison work.
const MAX_SECRET_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Creator,
    Technician,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Creator => "creator",
            Role::Technician => "technician",
        }
    }
}

/// A secret read from a file. `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Read a secret file; surrounding whitespace (the trailing newline editors add) is dropped.
    pub fn read(what: &'static str, path: &Path) -> Result<Secret, HttpError> {
        let text = std::fs::read_to_string(path).map_err(|source| HttpError::Secret { what, path: path.to_path_buf(), source })?;
        let s = text.trim();
        if s.is_empty() || s.len() > MAX_SECRET_LEN {
            return Err(HttpError::BadSecret {
                what,
                path: path.to_path_buf(),
                reason: format!("must hold 1–{MAX_SECRET_LEN} characters"),
            });
        }
        Ok(Secret(s.to_string()))
    }

    pub fn from_string(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// Length in characters (to warn about short tokens; reveals nothing else).
    pub fn len(&self) -> usize {
        self.0.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time in the contents; the loop length depends only on the
    /// longer input, so neither a prefix match nor the secret's length leaks.
    pub fn matches(&self, candidate: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), candidate.as_bytes());
        if b.len() > MAX_SECRET_LEN {
            return false;
        }
        let n = a.len().max(b.len());
        let mut eq = (a.len() as u64).ct_eq(&(b.len() as u64));
        for i in 0..n {
            eq &= a.get(i).copied().unwrap_or(0).ct_eq(&b.get(i).copied().unwrap_or(0));
        }
        eq.into()
    }
}

/// 128 random bits, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 16];
    // The OS RNG failing is not recoverable and must not fall back to a weak token.
    getrandom::fill(&mut b).expect("OS random number generator");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    pub csrf: String,
    expires: Instant,
    /// Cancelled when the session ends (logout, eviction, expiry noticed):
    /// its live streams end at once rather than on their next tick.
    pub ended: CancellationToken,
}

/// The key a session is kept under: SHA-256 of its cookie token, hex. The
/// store (and its file) never holds a token a client could present.
fn digest(token: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// One session as persisted (`sessions.json` in `state_dir`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    /// SHA-256 of the cookie token, hex (never the token itself).
    id: String,
    role: String,
    csrf: String,
    /// Wall-clock expiry, seconds since the Unix epoch.
    expires: u64,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedFile {
    sessions: Vec<Saved>,
}

/// Server-side session store, bounded per role: a flood of logins of one
/// role can never push out a session of the other (a creator's login never
/// evicts the technician). With a file ([`Sessions::persistent`]), sessions
/// survive a restart until they expire: every login, logout and eviction
/// hands the current set to a writer task, which replaces the file
/// atomically (the latest set wins; a burst of logins is one write).
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max_creator: usize,
    max_technician: usize,
    store: Option<tokio::sync::watch::Sender<Vec<Saved>>>,
}

impl Sessions {
    pub fn new(ttl: Duration, max_creator: usize, max_technician: usize) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
            max_creator: max_creator.max(1),
            max_technician: max_technician.max(1),
            store: None,
        }
    }

    /// As [`Sessions::new`], kept in `path`: the sessions saved there that
    /// have not expired are live again. A missing file is an empty store; an
    /// unreadable or damaged one is logged and ignored (its creators sign in
    /// again), never a reason not to start. Spawns the writer task (needs a
    /// tokio runtime); it ends when the store is dropped.
    pub fn persistent(ttl: Duration, max_creator: usize, max_technician: usize, path: PathBuf) -> Sessions {
        let mut s = Sessions::new(ttl, max_creator, max_technician);
        let now_wall = SystemTime::now();
        let now = Instant::now();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<SavedFile>(&bytes) {
                Ok(file) => {
                    let mut map = s.lock();
                    for saved in file.sessions {
                        let role = match saved.role.as_str() {
                            "creator" => Role::Creator,
                            "technician" => Role::Technician,
                            _ => continue,
                        };
                        let left = (UNIX_EPOCH + Duration::from_secs(saved.expires)).duration_since(now_wall).unwrap_or_default();
                        // Never longer than this server's own lifetime for a session.
                        if left.is_zero() || left > ttl || map.values().filter(|x| x.role == role).count() >= s.max(role) {
                            continue;
                        }
                        map.insert(saved.id, Session { role, csrf: saved.csrf, expires: now + left, ended: CancellationToken::new() });
                    }
                    drop(map);
                }
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "ignoring a damaged sessions file: creators sign in again"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot read the sessions file: creators sign in again"),
        }
        let (tx, mut rx) = tokio::sync::watch::channel(Vec::new());
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let file = SavedFile { sessions: rx.borrow_and_update().clone() };
                let path = path.clone();
                let written = tokio::task::spawn_blocking(move || write_sessions(&path, &file)).await;
                if let Ok(Err(e)) = written {
                    tracing::warn!(error = %e, "cannot save the sessions: they will not survive a restart");
                }
            }
        });
        s.store = Some(tx);
        s
    }

    /// Hand the current sessions to the writer (no-op without a file).
    fn save(&self, map: &HashMap<String, Session>) {
        let Some(store) = &self.store else { return };
        let (now, wall) = (Instant::now(), SystemTime::now());
        let saved = map
            .iter()
            .filter(|(_, s)| s.expires > now)
            .map(|(id, s)| Saved {
                id: id.clone(),
                role: s.role.as_str().to_string(),
                csrf: s.csrf.clone(),
                expires: (wall + (s.expires - now)).duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            })
            .collect();
        store.send_replace(saved);
    }

    fn max(&self, role: Role) -> usize {
        match role {
            Role::Creator => self.max_creator,
            Role::Technician => self.max_technician,
        }
    }

    /// New session: (cookie token, session). When the role's sessions are all
    /// taken, its session closest to expiry ends (never one of the other role),
    /// so the newest login of a role always works and memory stays bounded.
    pub fn create(&self, role: Role) -> (String, Session) {
        let now = Instant::now();
        let token = random_token();
        let s = Session { role, csrf: random_token(), expires: now + self.ttl, ended: CancellationToken::new() };
        let mut map = self.lock();
        let count = |map: &HashMap<String, Session>| map.values().filter(|s| s.role == role).count();
        if count(&map) >= self.max(role) {
            map.retain(|_, s| {
                let live = s.expires > now;
                if !live {
                    s.ended.cancel();
                }
                live
            });
        }
        if count(&map) >= self.max(role) {
            let oldest = map.iter().filter(|(_, s)| s.role == role).min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone());
            if let Some(s) = oldest.and_then(|k| map.remove(&k)) {
                s.ended.cancel();
            }
        }
        map.insert(digest(&token), s.clone());
        self.save(&map);
        (token, s)
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let id = digest(token);
        let mut map = self.lock();
        match map.get(&id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                if let Some(s) = map.remove(&id) {
                    s.ended.cancel();
                }
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        let mut map = self.lock();
        if let Some(s) = map.remove(&digest(token)) {
            s.ended.cancel();
            self.save(&map);
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Replace the sessions file atomically, readable by the daemon's user only.
fn write_sessions(path: &Path, file: &SavedFile) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(file).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomic_with(path, |f| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        std::io::Write::write_all(f, &bytes)
    })
    .map(drop)
}

/// What is being guessed. Each has its own budgets, so guessing the
/// creator's PIN can never lock out the technician's token (or the reverse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Credential {
    Pin,
    Token,
}

/// Limits on PIN/token guessing and on successful logins.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Wrong attempts of one credential from one client address before that
    /// address is locked out (for that credential only).
    pub max_failures: u32,
    /// How long a lockout lasts (per address and global).
    pub lockout: Duration,
    /// Wrong attempts of one credential from all addresses together within
    /// `lockout` before the global lock (bounds guessing from many addresses).
    /// PIN: every PIN login is refused (a 4-digit PIN must not fall to many
    /// addresses guessing a few times each). Token: only addresses that have
    /// guessed wrong are refused; an address with no wrong guess may still
    /// present the token, so a holder of the correct token is never locked
    /// out by others' guessing, while each new address gets one guess.
    pub global_max_failures: u32,
    /// Addresses tracked at once per credential; beyond this, attempts from
    /// untracked addresses are refused rather than memory growing.
    pub max_tracked: usize,
    /// Successful logins per address and role within `login_window`: a PIN
    /// holder cannot churn the session store.
    pub max_logins: u32,
    pub login_window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            lockout: Duration::from_secs(60),
            global_max_failures: 30,
            max_tracked: 1024,
            max_logins: 10,
            login_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

/// One credential's guess budgets.
#[derive(Debug, Default)]
struct Budget {
    per_ip: HashMap<IpAddr, Record>,
    recent: VecDeque<Instant>,
    global_locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct LimiterState {
    pin: Budget,
    token: Budget,
    /// Successful logins per (address, role), newest last.
    logins: HashMap<(IpAddr, Role), VecDeque<Instant>>,
}

impl LimiterState {
    fn budget(&mut self, c: Credential) -> &mut Budget {
        match c {
            Credential::Pin => &mut self.pin,
            Credential::Token => &mut self.token,
        }
    }
}

/// What a wrong attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strike {
    /// `n` attempts left before a lockout.
    Left(u32),
    /// Locked out for this long.
    Locked(Duration),
}

#[derive(Debug)]
pub struct Limiter {
    policy: LockoutPolicy,
    state: Mutex<LimiterState>,
}

impl Limiter {
    pub fn new(policy: LockoutPolicy) -> Limiter {
        Limiter { policy, state: Mutex::new(LimiterState::default()) }
    }

    /// `Err(remaining)` while this address may not try `cred` (see [`LockoutPolicy`]).
    pub fn check(&self, cred: Credential, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(cred, ip, Instant::now())
    }

    /// [`Limiter::check`] at `now` (the limiter never reads the clock itself,
    /// so tests step time exactly).
    fn check_at(&self, cred: Credential, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let max_tracked = self.policy.max_tracked;
        let mut st = self.lock();
        let b = st.budget(cred);
        let record = b.per_ip.get(&ip);
        if let Some(until) = record.and_then(|r| r.locked_until).filter(|u| *u > now) {
            return Err(until - now);
        }
        if let Some(until) = b.global_locked_until.filter(|u| *u > now) {
            let guessed_wrong = record.is_some_and(|r| r.failures > 0 && now.duration_since(r.last) < self.policy.lockout);
            let untrackable = record.is_none() && b.per_ip.len() >= max_tracked;
            if cred == Credential::Pin || guessed_wrong || untrackable {
                return Err(until - now);
            }
        }
        Ok(())
    }

    pub fn failure(&self, cred: Credential, ip: IpAddr) -> Strike {
        self.failure_at(cred, ip, Instant::now())
    }

    fn failure_at(&self, cred: Credential, ip: IpAddr, now: Instant) -> Strike {
        let p = &self.policy;
        let mut st = self.lock();
        let b = st.budget(cred);
        b.recent.push_back(now);
        while b.recent.front().is_some_and(|t| now.duration_since(*t) > p.lockout) {
            b.recent.pop_front();
        }
        if b.recent.len() >= p.global_max_failures as usize {
            b.global_locked_until = Some(now + p.lockout);
            b.recent.clear();
        }
        if !b.per_ip.contains_key(&ip) && b.per_ip.len() >= p.max_tracked {
            b.per_ip.retain(|_, r| r.locked_until.is_some_and(|u| u > now) || now.duration_since(r.last) < p.lockout);
            if b.per_ip.len() >= p.max_tracked {
                b.global_locked_until = Some(now + p.lockout);
                return Strike::Locked(p.lockout);
            }
        }
        let r = b.per_ip.entry(ip).or_insert(Record { failures: 0, locked_until: None, last: now });
        // A lockout (or a quiet spell) that has run out starts a fresh count.
        if r.locked_until.is_some_and(|u| u <= now) || now.duration_since(r.last) >= p.lockout {
            r.locked_until = None;
            r.failures = 0;
        }
        r.failures += 1;
        r.last = now;
        if r.failures >= p.max_failures {
            r.locked_until = Some(now + p.lockout);
            return Strike::Locked(p.lockout);
        }
        let left = p.max_failures - r.failures;
        if let Some(until) = b.global_locked_until.filter(|u| *u > now) {
            return Strike::Locked(until - now);
        }
        Strike::Left(left)
    }

    /// The right secret: this address's wrong guesses of it are forgiven.
    pub fn success(&self, cred: Credential, ip: IpAddr) {
        self.lock().budget(cred).per_ip.remove(&ip);
    }

    /// Count a successful login of `role` from `ip`; `Err(wait)` when this
    /// address has logged in as often as [`LockoutPolicy::max_logins`] allows.
    pub fn login(&self, role: Role, ip: IpAddr) -> Result<(), Duration> {
        self.login_at(role, ip, Instant::now())
    }

    fn login_at(&self, role: Role, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let p = &self.policy;
        let mut st = self.lock();
        let window = p.login_window;
        if !st.logins.contains_key(&(ip, role)) && st.logins.len() >= p.max_tracked {
            st.logins.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            if st.logins.len() >= p.max_tracked {
                return Err(window);
            }
        }
        let q = st.logins.entry((ip, role)).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
            q.pop_front();
        }
        if q.len() >= p.max_logins as usize {
            return Err(q.front().map(|t| window.saturating_sub(now.duration_since(*t))).unwrap_or(window));
        }
        q.push_back(now);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimiterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The cookie value of `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Authorization: Bearer …`
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The `Set-Cookie` value for a new session. No `Secure` flag: the booth
/// serves plain HTTP on its own network (a TLS proxy in front may add it).
pub fn session_cookie(token: &str, ttl: Duration) -> String {
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", ttl.as_secs())
}

pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_hold_1_to_256_characters_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let read = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Secret::read("token", &path)
        };
        let s = read("  é-abc \n").expect("trimmed");
        assert!(s.matches("é-abc") && !s.matches("é-abc \n"));
        assert_eq!((s.len(), s.is_empty()), (5, false), "characters, not bytes");
        assert!(Secret::from_string("").is_empty());
        for empty in ["", " \n"] {
            assert!(read(empty).is_err(), "{empty:?}");
        }
        let longest = "x".repeat(MAX_SECRET_LEN);
        assert!(read(&longest).expect("256 characters").matches(&longest));
        assert!(read(&format!("{longest}x")).is_err(), "257 characters");
    }

    /// Both roles come back after a restart, each within its own cap.
    #[tokio::test]
    async fn a_restart_restores_both_roles_each_within_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.json");
        let ttl = Duration::from_secs(3600);
        let s = Sessions::persistent(ttl, 4, 4, path.clone());
        let creators = [s.create(Role::Creator).0, s.create(Role::Creator).0];
        let technicians = [s.create(Role::Technician).0, s.create(Role::Technician).0, s.create(Role::Technician).0];
        written(&path, |t| t.matches("\"id\"").count() == 5).await;
        drop(s);
        // One session per role now: each role's cap counts only its own
        // sessions, whatever order the file lists them in.
        let again = Sessions::persistent(ttl, 1, 1, path.clone());
        let back = |tokens: &[String], role| tokens.iter().filter(|t| again.get(t).is_some_and(|s| s.role == role)).count();
        assert_eq!((back(&creators, Role::Creator), back(&technicians, Role::Technician)), (1, 1));
    }

    #[test]
    fn secret_compare() {
        let s = Secret::from_string("1234");
        assert!(s.matches("1234"));
        assert!(!s.matches("12345"));
        assert!(!s.matches("123"));
        assert!(!s.matches(""));
        assert!(!s.matches("1235"));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    fn policy() -> LockoutPolicy {
        LockoutPolicy { max_failures: 3, global_max_failures: 7, max_tracked: 100, ..LockoutPolicy::default() }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Lockouts end exactly at their end, and not before; a failure that
    /// raced past `check` into a lockout does not lift it; the count starts
    /// afresh once the lockout is over.
    #[test]
    fn lockouts_end_on_time_and_a_raced_failure_does_not_lift_one() {
        use Credential::Pin;
        let l = Limiter::new(policy());
        let (a, t0, ms) = (ip("127.0.0.1"), Instant::now(), Duration::from_millis(1));
        let lockout = policy().lockout;
        l.failure_at(Pin, a, t0);
        l.failure_at(Pin, a, t0);
        assert_eq!(l.failure_at(Pin, a, t0), Strike::Locked(lockout));
        // A request that passed `check` just before the lock fails just
        // after it: still locked (the lock now runs from that failure).
        assert_eq!(l.failure_at(Pin, a, t0 + ms), Strike::Locked(lockout));
        let end = t0 + ms + lockout;
        assert_eq!(l.check_at(Pin, a, end - ms), Err(ms));
        assert_eq!(l.check_at(Pin, a, end), Ok(()), "over at its end");
        assert_eq!(l.failure_at(Pin, a, end), Strike::Left(2), "a fresh count");
    }

    /// The global budget counts wrong guesses within `lockout` only, and an
    /// old wrong guess does not hold an address back during a global lock.
    #[test]
    fn global_budget_counts_only_recent_guesses() {
        use Credential::Token;
        let (t0, ms) = (Instant::now(), Duration::from_millis(1));
        let lockout = policy().lockout;
        let l = Limiter::new(policy());
        let old = ip("127.0.2.1");
        l.failure_at(Token, old, t0);
        for i in 2..=6 {
            l.failure_at(Token, ip(&format!("127.0.2.{i}")), t0);
        }
        // The 7th wrong guess, after the first six have aged out: no lock.
        assert_eq!(l.failure_at(Token, ip("127.0.2.7"), t0 + lockout + ms), Strike::Left(2));
        assert_eq!(l.check_at(Token, ip("127.0.2.99"), t0 + lockout + ms), Ok(()));
        // Six more now: 7 within the window, the global lock is on.
        let t1 = t0 + lockout + ms;
        for i in 8..=13 {
            l.failure_at(Token, ip(&format!("127.0.2.{i}")), t1);
        }
        assert!(l.check_at(Token, ip("127.0.2.8"), t1).is_err(), "a recent guesser is held back");
        assert_eq!(l.check_at(Token, old, t1), Ok(()), "a guess older than `lockout` is forgotten");
    }

    /// When `max_tracked` addresses have guessed, a new address is refused
    /// (and the credential locked) unless old entries can go: those quiet
    /// for `lockout` whose lockout is over.
    #[test]
    fn a_full_address_table_drops_only_quiet_entries() {
        use Credential::Token;
        let l = Limiter::new(LockoutPolicy { max_tracked: 2, ..policy() });
        let (t0, s) = (Instant::now(), Duration::from_secs(1));
        let lockout = policy().lockout;
        let (a, b) = (ip("127.0.3.1"), ip("127.0.3.2"));
        for _ in 0..3 {
            l.failure_at(Token, a, t0);
        }
        assert_eq!(l.failure_at(Token, b, t0 + 31 * s), Strike::Left(2));
        // Still tracked: a known address keeps its count.
        assert_eq!(l.failure_at(Token, b, t0 + 31 * s), Strike::Left(1));
        // Full, nobody quiet: refused and the token is locked for everyone untracked.
        let c = ip("127.0.3.3");
        assert_eq!(l.failure_at(Token, c, t0 + 32 * s), Strike::Locked(lockout));
        assert!(l.check_at(Token, c, t0 + 33 * s).is_err());
        // Afresh: a's lockout ends at t0 + 60 s; at 61 s a goes, b (30 s quiet) stays.
        let l = Limiter::new(LockoutPolicy { max_tracked: 2, ..policy() });
        let (d, t) = (ip("127.0.3.4"), t0 + lockout + s);
        for _ in 0..3 {
            l.failure_at(Token, a, t0);
        }
        l.failure_at(Token, b, t - 30 * s);
        assert_eq!(l.failure_at(Token, d, t), Strike::Left(2), "a made room");
        assert_eq!(l.failure_at(Token, c, t), Strike::Locked(lockout), "b and d are not quiet");
    }

    /// A full table of addresses that logged in makes room only from those
    /// with no login within `login_window`; a known address is always counted.
    #[test]
    fn a_full_login_table_drops_only_quiet_addresses() {
        let l = Limiter::new(LockoutPolicy { max_tracked: 2, ..policy() });
        let (t0, s) = (Instant::now(), Duration::from_secs(1));
        let window = policy().login_window;
        let [a, b, c, d] = ["127.0.4.1", "127.0.4.2", "127.0.4.3", "127.0.4.4"].map(ip);
        l.login_at(Role::Creator, a, t0).unwrap();
        l.login_at(Role::Creator, b, t0 + 30 * s).unwrap();
        assert_eq!(l.login_at(Role::Creator, c, t0 + 30 * s), Err(window), "full, nobody quiet");
        assert_eq!(l.login_at(Role::Creator, b, t0 + 31 * s), Ok(()), "a known address");
        // At t0 + window a has been quiet for the whole window: it goes, b stays.
        assert_eq!(l.login_at(Role::Creator, c, t0 + window), Ok(()));
        assert_eq!(l.login_at(Role::Creator, d, t0 + window), Err(window));
    }

    /// A correct credential clears that address's wrong guesses.
    #[test]
    fn a_success_starts_the_address_afresh() {
        let l = Limiter::new(policy());
        let a = ip("127.0.5.1");
        l.failure(Credential::Pin, a);
        l.failure(Credential::Pin, a);
        l.success(Credential::Pin, a);
        assert_eq!(l.failure(Credential::Pin, a), Strike::Left(2));
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read_and_set_as_browsers_expect() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "theme=dark; studiod_session=abc123".parse().unwrap());
        h.append(header::COOKIE, "other=1".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc123"));
        assert_eq!(cookie(&h, "other"), Some("1"));
        assert_eq!(cookie(&h, "studiod"), None);
        h.insert(header::AUTHORIZATION, "Bearer  tok-1 ".parse().unwrap());
        assert_eq!(bearer(&h), Some("tok-1"));
        h.insert(header::AUTHORIZATION, "Basic dXNlcg==".parse().unwrap());
        assert_eq!(bearer(&h), None);
        assert_eq!(
            session_cookie("abc123", Duration::from_secs(600)),
            "studiod_session=abc123; Path=/; HttpOnly; SameSite=Strict; Max-Age=600"
        );
        assert_eq!(clear_cookie(), "studiod_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    }

    #[test]
    fn an_expired_session_is_gone_and_the_lifetime_is_the_cookies() {
        let ttl = Duration::from_secs(3600);
        assert_eq!(Sessions::new(ttl, 4, 4).ttl(), ttl);
        let s = Sessions::new(Duration::ZERO, 4, 4);
        let (token, session) = s.create(Role::Creator);
        assert!(s.get(&token).is_none(), "expired at once");
        assert!(session.ended.is_cancelled(), "its page connections are told");
    }

    #[test]
    fn limiter_locks_after_max_and_bounds_pins_globally() {
        let l = Limiter::new(policy());
        let a = ip("127.0.0.1");
        assert_eq!(l.failure(Credential::Pin, a), Strike::Left(2));
        assert_eq!(l.failure(Credential::Pin, a), Strike::Left(1));
        assert!(matches!(l.failure(Credential::Pin, a), Strike::Locked(_)));
        assert!(l.check(Credential::Pin, a).is_err());
        let b = ip("127.0.0.2");
        assert!(l.check(Credential::Pin, b).is_ok());
        l.failure(Credential::Pin, b);
        l.failure(Credential::Pin, b);
        let c = ip("127.0.0.3");
        l.failure(Credential::Pin, c);
        // 6 so far; the 7th from anyone locks every PIN login
        assert!(matches!(l.failure(Credential::Pin, c), Strike::Locked(_)));
        assert!(l.check(Credential::Pin, ip("127.0.0.9")).is_err());
        // …but not the token, not even from the guessing addresses
        for x in [a, b, c, ip("127.0.0.9")] {
            assert!(l.check(Credential::Token, x).is_ok());
        }
    }

    #[test]
    fn token_global_lock_holds_back_only_addresses_that_guessed_wrong() {
        let l = Limiter::new(policy());
        for i in 1..=7 {
            l.failure(Credential::Token, ip(&format!("127.0.1.{i}")));
        }
        // global token lock on: the guessers are refused, a clean address is not
        assert!(l.check(Credential::Token, ip("127.0.1.1")).is_err());
        assert!(l.check(Credential::Token, ip("127.0.0.1")).is_ok());
        // a new address gets one guess, then it is held back too
        let n = ip("127.0.1.99");
        assert!(matches!(l.failure(Credential::Token, n), Strike::Locked(_)));
        assert!(l.check(Credential::Token, n).is_err());
        // the PIN budget is untouched
        assert!(l.check(Credential::Pin, ip("127.0.1.1")).is_ok());
    }

    #[test]
    fn successful_logins_are_rate_limited_per_address_and_role() {
        let l = Limiter::new(LockoutPolicy { max_logins: 2, ..policy() });
        let a = ip("127.0.0.1");
        assert!(l.login(Role::Creator, a).is_ok());
        assert!(l.login(Role::Creator, a).is_ok());
        let wait = l.login(Role::Creator, a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(60));
        assert!(l.login(Role::Technician, a).is_ok());
        assert!(l.login(Role::Creator, ip("127.0.0.2")).is_ok());
    }

    #[test]
    fn sessions_are_bounded_per_role() {
        let s = Sessions::new(Duration::from_secs(60), 2, 1);
        let (t, ts) = s.create(Role::Technician);
        let (a, sa) = s.create(Role::Creator);
        let (b, _) = s.create(Role::Creator);
        let (c, _) = s.create(Role::Creator);
        // the oldest creator made room; its streams are told at once
        assert!(s.get(&a).is_none());
        assert!(sa.ended.is_cancelled());
        assert!(s.get(&b).is_some() && s.get(&c).is_some());
        // the technician was never a candidate
        assert!(s.get(&t).is_some());
        assert!(!ts.ended.is_cancelled());
        assert_ne!(b, c);
        assert_eq!(b.len(), 32);
        s.remove(&t);
        assert!(ts.ended.is_cancelled());
    }

    async fn written(path: &Path, pred: impl Fn(&str) -> bool) -> String {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(t) = std::fs::read_to_string(path) {
                    if pred(&t) {
                        return t;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("sessions file written within 5 s")
    }

    #[tokio::test]
    async fn sessions_survive_a_restart_without_their_tokens_on_disk() {
        let dir = std::env::temp_dir().join(format!("studiod-sessions-{}-{}", std::process::id(), random_token()));
        let path = dir.join("sessions.json");
        let ttl = Duration::from_secs(3600);
        let s = Sessions::persistent(ttl, 4, 4, path.clone());
        let (creator, cs) = s.create(Role::Creator);
        let (gone, _) = s.create(Role::Creator);
        s.remove(&gone);
        let text = written(&path, |t| t.matches("\"id\"").count() == 1).await;
        // The file names sessions by digest: no token a client could present.
        assert!(!text.contains(&creator) && !text.contains(&gone), "{text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        drop(s);
        let again = Sessions::persistent(ttl, 4, 4, path.clone());
        let back = again.get(&creator).expect("the creator's session is back");
        assert_eq!((back.role, back.csrf), (Role::Creator, cs.csrf));
        assert!(back.expires > Instant::now() + ttl - Duration::from_secs(5));
        assert!(again.get(&gone).is_none(), "a logged-out session stays out");
        // A shorter lifetime after the restart caps what was saved.
        let short = Sessions::persistent(Duration::from_secs(60), 4, 4, path.clone());
        assert!(short.get(&creator).is_none());
        // A damaged file is ignored, not fatal.
        std::fs::write(&path, b"{not json").unwrap();
        let fresh = Sessions::persistent(ttl, 4, 4, path.clone());
        assert!(fresh.get(&creator).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
