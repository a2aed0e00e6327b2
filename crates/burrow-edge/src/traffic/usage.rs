//! Per user × device usage: who (a user, a tunnel API key, a share link, or nobody) made how
//! many requests to which tunnel, counted in memory per minute and written, once a minute has
//! closed, as an addition to the stored hourly row of that tunnel and principal (an upsert;
//! several nodes add to the same row). Never a database write per request; memory is bounded
//! by [`MAX_OPEN`] (tunnel, principal, minute) entries.

use std::collections::HashMap;
use std::sync::Mutex;

use burrow_store::{PrincipalKind, PrincipalUsage, Timestamp, HOUR, MINUTE};
use chrono::{DurationRound, TimeDelta};

/// Open entries above this (a flood of new principals between flushes) are not created: the
/// request is still counted in the rollups, the metrics and the log.
const MAX_OPEN: usize = 100_000;

/// Who made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Who {
    pub kind: PrincipalKind,
    /// The user's, key's or share link's id; 0 when anonymous.
    pub id: i64,
}

impl Who {
    pub const ANONYMOUS: Who = Who {
        kind: PrincipalKind::Anonymous,
        id: 0,
    };
}

#[derive(Default, Clone, Copy)]
struct Counts {
    requests: i64,
    errors: i64,
    bytes_in: i64,
    bytes_out: i64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.requests = self.requests.saturating_add(o.requests);
        self.errors = self.errors.saturating_add(o.errors);
        self.bytes_in = self.bytes_in.saturating_add(o.bytes_in);
        self.bytes_out = self.bytes_out.saturating_add(o.bytes_out);
    }
}

/// Key: (tunnel id, principal, start of the minute — or of the hour for restored rows).
#[derive(Default)]
pub struct PrincipalCounts {
    open: Mutex<HashMap<(i64, Who, Timestamp), Counts>>,
}

fn trunc(at: Timestamp, secs: i64) -> Timestamp {
    at.duration_trunc(TimeDelta::seconds(secs)).unwrap_or(at)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl PrincipalCounts {
    pub fn record(
        &self,
        tunnel_id: i64,
        who: Who,
        at: Timestamp,
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
    ) {
        let c = Counts {
            requests: 1,
            errors: i64::from(status >= 400),
            bytes_in: signed(bytes_in),
            bytes_out: signed(bytes_out),
        };
        self.add((tunnel_id, who, trunc(at, MINUTE)), c);
    }

    fn add(&self, key: (i64, Who, Timestamp), c: Counts) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = open.get_mut(&key) {
            slot.add(c);
        } else if open.len() < MAX_OPEN {
            open.insert(key, c);
        }
    }

    /// Removes and answers the minutes that ended at or before `now` (all of them with
    /// `all`), added up per tunnel, principal and hour, ready to be added to the store.
    pub fn take(&self, now: Timestamp, all: bool) -> Vec<PrincipalUsage> {
        let closed: Vec<_> = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let keys: Vec<_> = open
                .keys()
                .filter(|(_, _, start)| all || *start + TimeDelta::seconds(MINUTE) <= now)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| open.remove(&k).map(|c| (k, c)))
                .collect()
        };
        let mut hours: HashMap<(i64, Who, Timestamp), Counts> = HashMap::new();
        for ((tunnel, who, start), c) in closed {
            hours
                .entry((tunnel, who, trunc(start, HOUR)))
                .or_default()
                .add(c);
        }
        hours
            .into_iter()
            .map(|((tunnel, who, hour), c)| PrincipalUsage {
                reverse_tunnel_id: tunnel,
                bucket_start: hour,
                kind: who.kind,
                principal_id: who.id,
                requests: c.requests,
                errors: c.errors,
                bytes_in: c.bytes_in,
                bytes_out: c.bytes_out,
            })
            .collect()
    }

    /// Puts rows back after a failed write; they are written with the next flush.
    pub fn restore(&self, rows: Vec<PrincipalUsage>) {
        for r in rows {
            let who = Who {
                kind: r.kind,
                id: r.principal_id,
            };
            let c = Counts {
                requests: r.requests,
                errors: r.errors,
                bytes_in: r.bytes_in,
                bytes_out: r.bytes_out,
            };
            self.add((r.reverse_tunnel_id, who, r.bucket_start), c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_close_into_hour_rows_per_principal() {
        let u = PrincipalCounts::default();
        let t0 = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:58:10Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let alice = Who {
            kind: PrincipalKind::User,
            id: 7,
        };
        u.record(1, alice, t0, 200, 3, 10);
        u.record(1, alice, t0 + TimeDelta::seconds(60), 404, 3, 10);
        u.record(1, Who::ANONYMOUS, t0, 500, 0, 1);
        u.record(1, alice, t0 + TimeDelta::seconds(120), 200, 3, 10); // 11:00
        let mut rows = u.take(t0 + TimeDelta::seconds(110), false);
        rows.sort_by_key(|r| r.kind.as_str());
        assert_eq!(rows.len(), 2, "10:58 and 10:59 closed: {rows:?}");
        assert_eq!(rows[0].kind, PrincipalKind::Anonymous);
        assert_eq!((rows[0].requests, rows[0].errors), (1, 1));
        let a = &rows[1];
        assert_eq!((a.principal_id, a.requests, a.errors), (7, 2, 1));
        assert_eq!((a.bytes_in, a.bytes_out), (6, 20));
        assert_eq!(a.bucket_start, trunc(t0, HOUR));
        u.restore(rows);
        let rest = u.take(t0, true);
        assert_eq!(
            rest.len(),
            3,
            "restored two, plus the 11:00 minute: {rest:?}"
        );
    }
}
