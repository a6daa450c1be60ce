//! Who may do what: the creator's PIN and the technician's token (read from
//! files, never logged), server-side sessions behind an HttpOnly cookie,
//! CSRF tokens bound to sessions, and the PIN/token attempt limiter.
//!
//! Roles: a creator may read state and apply scenes; a technician may do
//! everything. A role whose secret file is not configured is disabled: its
//! login is refused with `role_disabled` (the daemon logs this once at start).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

use super::HttpError;

/// Cookie carrying the session token.
pub const SESSION_COOKIE: &str = "studiod_session";
/// Header that must carry the session's CSRF token on state-changing requests
/// (and must be present, with any value, on login: a cross-site form cannot set it).
pub const CSRF_HEADER: &str = "x-studiod-csrf";
/// Longest PIN/token we even look at: bounds the comparison work.
const MAX_SECRET_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
}

/// Server-side session store, bounded in size.
#[derive(Debug)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(ttl: Duration, max: usize) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), ttl, max: max.max(1) }
    }

    /// New session: (cookie token, session).
    pub fn create(&self, role: Role) -> (String, Session) {
        let now = Instant::now();
        let token = random_token();
        let s = Session { role, csrf: random_token(), expires: now + self.ttl };
        let mut map = self.lock();
        if map.len() >= self.max {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= self.max {
            // Still full of live sessions: drop the one closest to expiry, so a
            // flood of logins can neither grow memory nor lock out the booth.
            if let Some(k) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                map.remove(&k);
            }
        }
        map.insert(token.clone(), s.clone());
        (token, s)
    }

    pub fn get(&self, token: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Limits on PIN/token guessing.
#[derive(Debug, Clone)]
pub struct LockoutPolicy {
    /// Wrong attempts from one client address before it is locked out.
    pub max_failures: u32,
    /// How long a lockout lasts (per address and global).
    pub lockout: Duration,
    /// Wrong attempts from all addresses together within `lockout` before
    /// every login is refused for `lockout` (bounds guessing from many addresses).
    pub global_max_failures: u32,
    /// Addresses tracked at once; beyond this, logins are refused globally
    /// rather than memory growing.
    pub max_tracked: usize,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy { max_failures: 5, lockout: Duration::from_secs(60), global_max_failures: 30, max_tracked: 1024 }
    }
}

#[derive(Debug)]
struct Record {
    failures: u32,
    locked_until: Option<Instant>,
    last: Instant,
}

#[derive(Debug, Default)]
struct LimiterState {
    per_ip: HashMap<IpAddr, Record>,
    recent: std::collections::VecDeque<Instant>,
    global_locked_until: Option<Instant>,
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

    /// `Err(remaining)` while this address (or everyone) is locked out.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let st = self.lock();
        if let Some(until) = st.global_locked_until.filter(|u| *u > now) {
            return Err(until - now);
        }
        match st.per_ip.get(&ip).and_then(|r| r.locked_until).filter(|u| *u > now) {
            Some(until) => Err(until - now),
            None => Ok(()),
        }
    }

    pub fn failure(&self, ip: IpAddr) -> Strike {
        let now = Instant::now();
        let p = &self.policy;
        let mut st = self.lock();
        st.recent.push_back(now);
        while st.recent.front().is_some_and(|t| now.duration_since(*t) > p.lockout) {
            st.recent.pop_front();
        }
        if st.recent.len() >= p.global_max_failures as usize {
            st.global_locked_until = Some(now + p.lockout);
            st.recent.clear();
        }
        if !st.per_ip.contains_key(&ip) && st.per_ip.len() >= p.max_tracked {
            st.per_ip.retain(|_, r| r.locked_until.is_some_and(|u| u > now) || now.duration_since(r.last) < p.lockout);
            if st.per_ip.len() >= p.max_tracked {
                st.global_locked_until = Some(now + p.lockout);
                return Strike::Locked(p.lockout);
            }
        }
        let r = st.per_ip.entry(ip).or_insert(Record { failures: 0, locked_until: None, last: now });
        // A lockout that has run out starts a fresh count.
        if r.locked_until.is_some_and(|u| u <= now) {
            r.locked_until = None;
            r.failures = 0;
        }
        r.failures += 1;
        r.last = now;
        if r.failures >= p.max_failures {
            r.locked_until = Some(now + p.lockout);
            r.failures = 0;
            return Strike::Locked(p.lockout);
        }
        if let Some(until) = st.global_locked_until.filter(|u| *u > now) {
            return Strike::Locked(until - now);
        }
        Strike::Left(p.max_failures - st.per_ip[&ip].failures)
    }

    pub fn success(&self, ip: IpAddr) {
        self.lock().per_ip.remove(&ip);
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
    fn secret_compare() {
        let s = Secret::from_string("1234");
        assert!(s.matches("1234"));
        assert!(!s.matches("12345"));
        assert!(!s.matches("123"));
        assert!(!s.matches(""));
        assert!(!s.matches("1235"));
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn limiter_locks_after_max_and_bounds_globally() {
        let l = Limiter::new(LockoutPolicy { max_failures: 3, lockout: Duration::from_secs(60), global_max_failures: 7, max_tracked: 100 });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(l.failure(a), Strike::Left(2));
        assert_eq!(l.failure(a), Strike::Left(1));
        assert!(matches!(l.failure(a), Strike::Locked(_)));
        assert!(l.check(a).is_err());
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        assert!(l.check(b).is_ok());
        l.failure(b);
        l.failure(b);
        let c: IpAddr = "127.0.0.3".parse().unwrap();
        l.failure(c);
        // 6 so far; the 7th from anyone locks everyone
        assert!(matches!(l.failure(c), Strike::Locked(_)));
        assert!(l.check("127.0.0.9".parse().unwrap()).is_err());
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::new(Duration::from_secs(60), 2);
        let (a, _) = s.create(Role::Creator);
        let (b, _) = s.create(Role::Creator);
        let (c, _) = s.create(Role::Technician);
        assert!(s.get(&a).is_none());
        assert!(s.get(&b).is_some() && s.get(&c).is_some());
        assert_ne!(b, c);
        assert_eq!(b.len(), 32);
    }
}
