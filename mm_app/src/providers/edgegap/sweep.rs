//! The orphan sweep's decisions, without I/O: which listed deployment of this namespace is
//! an orphan (a deployment an earlier, killed matchmaker process started whose game server
//! never registered) and old enough to stop. The worker lists and stops; this module judges.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bevygap_edgegap::DeploymentListItem;
use bevygap_shared::naming::ServerId;

use super::request::BEVYGAP_TAG;

/// What the sweep does with one listed deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not a deployment of this namespace (another namespace, another tool): left alone.
    Foreign,
    /// Its server has a NATS record: the matchmaker adopts it and stops it when empty.
    Known,
    /// This process launched or is stopping it: its worker handles it.
    Ours,
    /// Unknown but younger than the grace: it may still register (a live replica's server
    /// booting, or the killed matchmaker's server about to register and be adopted); judged
    /// again at the next sweep.
    Young,
    /// Unknown and older than the grace: nobody will ever claim it; stop it.
    Orphan(ServerId),
}

/// The server id a deployment of this provider carries as a tag, if it is one (`bevygap`
/// and `ns-<namespace>` tags, and an `edgegap-…` server id).
pub fn server_of(item: &DeploymentListItem, namespace_tag: &str) -> Option<ServerId> {
    if !item.has_tag(BEVYGAP_TAG) || !item.has_tag(namespace_tag) {
        return None;
    }
    let tags = item.tags.as_ref()?;
    tags.iter().filter(|t| t.starts_with("edgegap-")).find_map(|t| ServerId::new(t.as_str()).ok())
}

/// Judges one listed deployment. `age` is how long it has existed (`None`: unknown, never an
/// orphan); `ours` says whether this process handles the server.
pub fn judge(
    item: &DeploymentListItem,
    namespace_tag: &str,
    known: &HashSet<ServerId>,
    ours: impl Fn(&ServerId) -> bool,
    age: Option<Duration>,
    grace: Duration,
) -> Verdict {
    let Some(server_id) = server_of(item, namespace_tag) else { return Verdict::Foreign };
    if known.contains(&server_id) {
        Verdict::Known
    } else if ours(&server_id) {
        Verdict::Ours
    } else if age.is_some_and(|age| age >= grace) {
        Verdict::Orphan(server_id)
    } else {
        Verdict::Young
    }
}

/// A deployment's age: from Edgegap's `start_time` (UTC, `YYYY-MM-DD HH:MM:SS[.ffffff]`)
/// and the wall clock, but at least how long this process has seen it (`first_seen`,
/// updated here), so an unreadable timestamp or a skewed clock only delays a stop, never
/// prevents it.
pub fn age(
    item: &DeploymentListItem,
    now_unix: f64,
    first_seen: &mut HashMap<String, std::time::Instant>,
    now: std::time::Instant,
) -> Duration {
    let seen = *first_seen.entry(item.request_id.clone()).or_insert(now);
    let by_clock = parse_start_time(&item.start_time)
        .map(|start| Duration::from_secs_f64((now_unix - start).max(0.0)))
        .unwrap_or_default();
    by_clock.max(now.saturating_duration_since(seen))
}

/// Seconds since the Unix epoch of an Edgegap timestamp (`2024-05-26 12:00:45.831041`, UTC;
/// a `T` separator, a trailing `Z` or `+00:00` are accepted too).
pub fn parse_start_time(text: &str) -> Option<f64> {
    let text = text.trim().trim_end_matches('Z').trim_end_matches("+00:00");
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.splitn(3, ':');
    let (hour, minute) = (t.next()?.parse::<i64>().ok()?, t.next()?.parse::<i64>().ok()?);
    let second = t.next()?.parse::<f64>().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..61.0).contains(&second);
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3_600 + minute * 60) as f64 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn item(request_id: &str, tags: &[&str], start_time: &str) -> DeploymentListItem {
        DeploymentListItem {
            request_id: request_id.into(),
            fqdn: format!("{request_id}.pr.edgegap.net"),
            start_time: start_time.into(),
            ready: true,
            public_ip: "127.0.0.1".into(),
            ports: None,
            tags: Some(tags.iter().map(|t| t.to_string()).collect()),
            sockets: None,
            sockets_usage: None,
            is_joinable_by_session: None,
        }
    }

    fn id(n: u8) -> ServerId {
        ServerId::new(format!("edgegap-{n:016x}")).expect("id")
    }

    #[test]
    fn timestamps_parse_as_utc() {
        assert_eq!(parse_start_time("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(parse_start_time("2024-05-26 12:00:45.5"), Some(1_716_724_845.5));
        assert_eq!(parse_start_time("2024-05-26T12:00:45.5Z"), Some(1_716_724_845.5));
        assert_eq!(parse_start_time("2000-03-01 00:00:00+00:00"), Some(951_868_800.0));
        for bad in ["", "yesterday", "2024-13-01 00:00:00", "2024-05-26", "2024-05-26 25:00:00"] {
            assert_eq!(parse_start_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_unknown_deployments_of_this_namespace_past_the_grace_are_orphans() {
        let grace = Duration::from_secs(90);
        let old = Some(Duration::from_secs(91));
        let known: HashSet<ServerId> = [id(1)].into_iter().collect();
        let mine = |s: &ServerId| *s == id(2);
        let tags = |n: u8| vec!["bevygap".to_string(), "ns-prod".into(), id(n).to_string()];
        let judge_one = |tags: Vec<String>, age| {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            judge(&item("a1b2c3d4e5f6", &tags, ""), "ns-prod", &known, mine, age, grace)
        };
        assert_eq!(judge_one(tags(1), old), Verdict::Known);
        assert_eq!(judge_one(tags(2), old), Verdict::Ours);
        assert_eq!(judge_one(tags(3), old), Verdict::Orphan(id(3)));
        assert_eq!(judge_one(tags(3), Some(Duration::from_secs(89))), Verdict::Young);
        assert_eq!(judge_one(tags(3), None), Verdict::Young, "an unknown age never stops");
        let other_ns = vec!["bevygap".to_string(), "ns-staging".into(), id(3).to_string()];
        assert_eq!(judge_one(other_ns, old), Verdict::Foreign);
        let untagged = vec!["ns-prod".to_string(), id(3).to_string()];
        assert_eq!(judge_one(untagged, old), Verdict::Foreign, "not started by bevygap");
        let no_server = vec!["bevygap".to_string(), "ns-prod".into()];
        assert_eq!(judge_one(no_server, old), Verdict::Foreign);
    }

    #[test]
    fn age_is_the_clock_age_but_at_least_the_time_seen() {
        let mut seen = HashMap::new();
        let start = Instant::now();
        let listed = item("a1b2c3d4e5f6", &[], "2024-05-26 12:00:45");
        let now_unix = 1_716_724_845.0 + 30.0;
        assert_eq!(age(&listed, now_unix, &mut seen, start), Duration::from_secs(30));
        let unreadable = item("b1b2c3d4e5f6", &[], "not a time");
        assert_eq!(age(&unreadable, now_unix, &mut seen, start), Duration::ZERO);
        let later = start + Duration::from_secs(100);
        assert_eq!(age(&unreadable, now_unix, &mut seen, later), Duration::from_secs(100));
        assert_eq!(age(&listed, now_unix, &mut seen, later), Duration::from_secs(100));
        let future = item("c1b2c3d4e5f6", &[], "2099-01-01 00:00:00");
        assert_eq!(age(&future, now_unix, &mut seen, start), Duration::ZERO, "clock skew is not negative");
    }
}
