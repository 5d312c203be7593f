//! The demo's people: everyone the seed counts, created through the people API with the
//! admin token when the simulator starts, and the simulator's devices bound to them.
//!
//! The roster is a function of the map alone: every patrol team of the map's routes
//! with its members (the route's `members`, the first one the team's leader), every post
//! with a leader and two officers, one grid member per village grid, the judicial
//! office's twelve mediators and the command centre's operators and administrator. Ids
//! and names are derived from the map's ids, never from the clock, so that a second run
//! (or a second simulator) asks for the same people and the server's 409 ("already
//! there") is the answer that means done. The names are drawn from a fixed list of
//! common surnames and given-name characters: illustrative, naming no real person; the
//! demo's people have no phone numbers for the same reason.
//!
//! A patrol team's members other than its leader hold the post officer's role: there is
//! no role of a patrol member, and the post officer's ("own tasks") is the narrowest one
//! that lets a member's phone take the tasks dispatched to it.

use std::time::Duration;

use anyhow::Context;
use futures_util::{stream, StreamExt};
use liandong_core::CountyMap;
use serde::Serialize;

use super::options::Args;
use super::support::{splitmix64, Rng};

/// The judicial office's mediators in the seed.
pub(super) const MEDIATORS: usize = 12;
/// The command centre's operators: two on each of the three shifts of a day.
pub(super) const OPERATORS: usize = 6;
/// Officers of a post besides its leader.
pub(super) const POST_OFFICERS: usize = 2;

/// How many creations are in flight at once: each is one small transaction, and the
/// server's writer is shared with the demo's traffic.
const IN_FLIGHT: usize = 8;

/// Common surnames (the Hundred Family Surnames' most frequent ones today).
const SURNAMES: [&str; 40] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "蒋",
    "蔡", "余",
];

/// Characters common in given names; a name takes one or two of them.
const GIVEN: [&str; 48] = [
    "建", "国", "明", "华", "军", "平", "志", "红", "丽", "伟", "芳", "敏", "静", "强", "磊", "洋", "勇", "艳", "杰",
    "娟", "涛", "超", "霞", "刚", "英", "秀", "兰", "玉", "林", "文", "斌", "波", "辉", "鹏", "海", "燕", "宇", "浩",
    "婷", "雪", "慧", "琴", "云", "飞", "春", "梅", "德", "成",
];

/// One person as the people API's `POST /api/v1/people` takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct DemoPerson {
    pub person_id: String,
    pub name: String,
    pub roles: Vec<&'static str>,
    pub unit_kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit_id: Option<String>,
}

/// The person id for a map id and a suffix: the people API's `[a-z0-9_-]{1,64}`, made
/// from any map's ids by lowering their case and replacing every other character.
pub(super) fn person_id(prefix: &str, id: &str, suffix: &str) -> String {
    let raw = [prefix, id, suffix].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join("-");
    let mut out: String = raw
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' { c } else { '-' })
        .collect();
    if out.len() > 64 {
        // Keep the end, which tells the people of one unit apart, and mark the cut by a
        // hash of the whole id so that two long ids stay two people.
        let tail = out.split_off(out.len() - 47);
        out = format!("{:016x}-{tail}", fnv1a(&raw));
    }
    out
}

/// FNV-1a (Fowler, Noll, Vo) of a text: a stable seed for the person it names.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The illustrative name of the person with this id: a surname and one or two given
/// characters, the same for the same id in every run.
pub(super) fn demo_name(person_id: &str) -> String {
    let mut rng = Rng::new(splitmix64(fnv1a(person_id)));
    let mut name = SURNAMES[rng.below(SURNAMES.len())].to_owned();
    let given = if rng.below(4) == 0 { 1 } else { 2 };
    for _ in 0..given {
        name.push_str(GIVEN[rng.below(GIVEN.len())]);
    }
    name
}

fn person(person_id: String, roles: Vec<&'static str>, unit_kind: &'static str, unit_id: Option<&str>) -> DemoPerson {
    DemoPerson { name: demo_name(&person_id), person_id, roles, unit_kind, unit_id: unit_id.map(str::to_owned) }
}

/// The team of a route: its `team_id`, else the route's own id (as the server's
/// `travel::map_teams` reads it).
pub(crate) fn route_team(route: &liandong_core::map::Line) -> &str {
    route.properties.get("team_id").and_then(|v| v.as_str()).unwrap_or(&route.id)
}

/// How many members a route's team has (the route's `members`, 5 when absent), the
/// same count [`super::enlist`] gives the team devices.
pub(crate) fn team_size(route: &liandong_core::map::Line) -> u64 {
    route.properties.get("members").and_then(|v| v.as_u64()).unwrap_or(5).clamp(1, 50)
}

/// The person who carries a patrol team's `n`th phone (from 1; the 1st is the leader).
pub(super) fn team_member_id(team: &str, n: u64) -> String {
    person_id("", team, &format!("m{n:02}"))
}

/// The post officer who carries a post's duty phone.
pub(super) fn post_phone_person(post: &str) -> String {
    person_id("", post, "officer-1")
}

/// The member of a village grid.
pub(super) fn grid_member_id(grid: &str) -> String {
    person_id("grid", grid, "")
}

/// The command centre's `n`th operator (from 1).
pub(super) fn operator_id(n: usize) -> String {
    format!("cc-operator-{n:02}")
}

/// Everyone the demo has, in a fixed order: teams, posts, grids, mediators, the
/// command centre.
pub(super) fn roster(map: &CountyMap) -> Vec<DemoPerson> {
    let mut out = Vec::new();
    for route in &map.routes {
        let team = route_team(route);
        for n in 1..=team_size(route) {
            let role = if n == 1 { "patrol_leader" } else { "post_officer" };
            out.push(person(team_member_id(team, n), vec![role], "team", Some(team)));
        }
    }
    for post in &map.posts {
        out.push(person(person_id("", &post.id, "leader"), vec!["post_officer"], "post", Some(&post.id)));
        for n in 1..=POST_OFFICERS {
            out.push(person(
                person_id("", &post.id, &format!("officer-{n}")),
                vec!["post_officer"],
                "post",
                Some(&post.id),
            ));
        }
    }
    for grid in &map.grids {
        out.push(person(grid_member_id(&grid.id), vec!["grid_member"], "grid", Some(&grid.id)));
    }
    for n in 1..=MEDIATORS {
        out.push(person(format!("mediator-{n:02}"), vec!["partner"], "judicial_office", None));
    }
    for n in 1..=OPERATORS {
        out.push(person(operator_id(n), vec!["operator"], "command_centre", None));
    }
    out.push(person("cc-admin".into(), vec!["admin"], "command_centre", None));
    out
}

/// What creating the roster did: people created now, and people already there.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Created {
    pub created: usize,
    pub existing: usize,
}

/// Creates every person of the roster with the admin token, a few at a time. A 409 is
/// a person already there (an earlier run, another simulator, or an administrator who
/// has since changed them: their change stands). Any other refusal stops the start.
pub(super) async fn create_people(
    client: &reqwest::Client,
    args: &Args,
    people: &[DemoPerson],
) -> anyhow::Result<Created> {
    let url = format!("{}/api/v1/people", args.url);
    // Owned values in every future: a stream of borrowed ones is not `Send` for every
    // lifetime, which the demo's `tokio::spawn` needs.
    let answers = stream::iter(people.to_vec())
        .map(|p| {
            let (client, url, token) = (client.clone(), url.clone(), args.token.clone());
            async move {
                let r = client
                    .post(url)
                    .bearer_auth(token)
                    .timeout(Duration::from_secs(30))
                    .json(&p)
                    .send()
                    .await
                    .with_context(|| format!("creating the demo person {}", p.person_id))?;
                match r.status().as_u16() {
                    201 => Ok(true),
                    409 => Ok(false),
                    status => anyhow::bail!(
                        "creating the demo person {} failed: {status} {}",
                        p.person_id,
                        r.text().await.unwrap_or_default()
                    ),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<anyhow::Result<bool>>>()
        .await;
    let mut done = Created::default();
    for answer in answers {
        if answer? {
            done.created += 1;
        } else {
            done.existing += 1;
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::test_support::{dazhu, demo_counts};
    use super::*;

    #[test]
    fn the_demo_map_has_the_seeds_people() {
        let people = roster(&dazhu());
        let c = demo_counts(&people);
        assert_eq!(c.teams, 17, "17 patrol teams");
        assert_eq!(c.team_members, 219, "219 volunteers in all");
        assert_eq!(c.team_leaders, 17, "one leader per team");
        assert_eq!(c.posts, 26, "26 posts");
        assert_eq!(c.posts_with_one_leader, 26, "every post has one leader");
        assert!(c.post_people >= 26 * 2, "every post has a leader and officers: {}", c.post_people);
        assert_eq!(c.grid_members, 324, "one grid member per village grid");
        assert_eq!(c.mediators, 12, "12 mediators of the judicial office");
        assert_eq!(c.operators, OPERATORS);
        assert_eq!(c.admins, 1);
    }

    #[test]
    fn the_roster_is_the_same_in_every_run_with_ids_the_api_takes_and_no_two_alike() {
        let map = dazhu();
        let (a, b) = (roster(&map), roster(&map));
        assert_eq!(a, b, "the roster depends on the map alone");
        let ids: HashSet<&str> = a.iter().map(|p| p.person_id.as_str()).collect();
        assert_eq!(ids.len(), a.len(), "every person id is unique");
        for p in &a {
            let id = &p.person_id;
            assert!(
                !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b)),
                "{id} is not an id the people API takes"
            );
            let n = p.name.chars().count();
            assert!((2..=3).contains(&n) && p.name.chars().all(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{p:?}");
        }
        let names: HashSet<&str> = a.iter().map(|p| p.name.as_str()).collect();
        assert!(names.len() > a.len() / 2, "names vary: {} distinct of {}", names.len(), a.len());
    }

    #[test]
    fn ids_from_any_map_become_ids_the_people_api_takes() {
        let cases = [
            ("", "team-01", "m01", "team-01-m01"),
            ("grid", "511724001001", "", "grid-511724001001"),
            ("", "Post 7/East", "leader", "post-7-east-leader"),
        ];
        for (prefix, id, suffix, want) in cases {
            assert_eq!(person_id(prefix, id, suffix), want);
        }
        let long = person_id("grid", &"x".repeat(80), "");
        assert_eq!(long.len(), 64, "{long}");
        assert_ne!(long, person_id("grid", &"x".repeat(81), ""), "two long ids stay two people");
    }
}
