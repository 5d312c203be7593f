//! The incident life cycle of the closed loop: received → dispatched → signed for (签收)
//! → en route → on scene → feedback (反馈) → closed, or cancelled; the deadline of each
//! step by priority, and the escalation of a late step (first to the post's leader,
//! then to the command centre).

use serde::{Deserialize, Serialize};

use crate::UnixMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    New,
    Dispatched,
    SignedFor,
    EnRoute,
    OnScene,
    Feedback,
    Closed,
    Cancelled,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored name read back (the store's rows decode their state columns through it).
impl TryFrom<String> for State {
    type Error = String;
    fn try_from(name: String) -> Result<State, String> {
        State::parse(&name).ok_or_else(|| format!("unknown incident state {name:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Dispatch,
    Sign,
    Depart,
    Arrive,
    Feedback,
    Close,
    Cancel,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "dispatch" => Action::Dispatch,
            "sign" => Action::Sign,
            "depart" => Action::Depart,
            "arrive" => Action::Arrive,
            "feedback" => Action::Feedback,
            "close" => Action::Close,
            "cancel" => Action::Cancel,
            _ => return None,
        })
    }
}

impl Action {
    /// The state the action leads to wherever it is allowed: an incident in this state
    /// has already taken the action (and has taken no other since, as every step leaves
    /// it).
    pub fn leads_to(self) -> State {
        match self {
            Action::Dispatch => State::Dispatched,
            Action::Sign => State::SignedFor,
            Action::Depart => State::EnRoute,
            Action::Arrive => State::OnScene,
            Action::Feedback => State::Feedback,
            Action::Close => State::Closed,
            Action::Cancel => State::Cancelled,
        }
    }
}

impl State {
    /// Every state, in the order of the life cycle.
    pub const ALL: [State; 8] = [
        State::New,
        State::Dispatched,
        State::SignedFor,
        State::EnRoute,
        State::OnScene,
        State::Feedback,
        State::Closed,
        State::Cancelled,
    ];

    /// The state's name as stored and sent (`signed_for`), the same as its serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Dispatched => "dispatched",
            State::SignedFor => "signed_for",
            State::EnRoute => "en_route",
            State::OnScene => "on_scene",
            State::Feedback => "feedback",
            State::Closed => "closed",
            State::Cancelled => "cancelled",
        }
    }

    /// The state of a stored or sent name.
    pub fn parse(name: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn is_open(self) -> bool {
        !matches!(self, State::Closed | State::Cancelled)
    }

    /// The state `action` leads to, or why it cannot be taken now. A dispatched
    /// incident may be dispatched again (to another unit) until it is signed for.
    pub fn after(self, action: Action) -> Result<State, String> {
        use {Action as A, State as S};
        match (self, action) {
            (s, A::Cancel) if s.is_open() => Ok(S::Cancelled),
            (S::New | S::Dispatched, A::Dispatch) => Ok(S::Dispatched),
            (S::Dispatched, A::Sign) => Ok(S::SignedFor),
            (S::SignedFor, A::Depart) => Ok(S::EnRoute),
            (S::EnRoute, A::Arrive) => Ok(S::OnScene),
            (S::OnScene, A::Feedback) => Ok(S::Feedback),
            (S::Feedback, A::Close) => Ok(S::Closed),
            (s, a) => Err(format!("cannot {a:?} an incident that is {s:?}").to_lowercase()),
        }
    }

    /// Seconds the incident may stay in this state before the step out of it is late,
    /// by priority (1 highest … 5). Closed and cancelled incidents have no deadline.
    pub fn deadline_s(self, priority: u8) -> Option<u32> {
        // Per state: (priority 1, priority 2, priority 3 and lower).
        let (p1, p2, p3) = match self {
            State::New => (60, 180, 600),
            State::Dispatched => (60, 180, 600),
            State::SignedFor => (120, 300, 900),
            State::EnRoute => (900, 1800, 3600),
            State::OnScene => (3600, 7200, 14_400),
            State::Feedback => (86_400, 86_400, 172_800),
            State::Closed | State::Cancelled => return None,
        };
        Some(match priority {
            0 | 1 => p1,
            2 => p2,
            _ => p3,
        })
    }
}

/// Who a late step is escalated to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Escalation {
    None,
    PostLeader,
    CommandCentre,
}

/// The escalation due for an incident in `state` since `since_ms` at `now`: the post's
/// leader once the step is late, the command centre once it is twice as late.
pub fn escalation_due(state: State, priority: u8, since_ms: UnixMs, now: UnixMs) -> Escalation {
    let Some(d) = state.deadline_s(priority) else { return Escalation::None };
    let late_ms = now - since_ms - i64::from(d) * 1000;
    if late_ms < 0 {
        Escalation::None
    } else if late_ms < i64::from(d) * 1000 {
        Escalation::PostLeader
    } else {
        Escalation::CommandCentre
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_is_stored_under_its_serde_name_and_read_back_from_it() {
        for s in State::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::from(s.as_str()));
            assert_eq!(State::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert_eq!(State::try_from("Closed".to_owned()), Err("unknown incident state \"Closed\"".to_owned()));
    }

    #[test]
    fn the_happy_path_and_refusals() {
        let path = [
            (Action::Dispatch, State::Dispatched),
            (Action::Dispatch, State::Dispatched),
            (Action::Sign, State::SignedFor),
            (Action::Depart, State::EnRoute),
            (Action::Arrive, State::OnScene),
            (Action::Feedback, State::Feedback),
            (Action::Close, State::Closed),
        ];
        let mut s = State::New;
        for (a, expected) in path {
            s = s.after(a).unwrap();
            assert_eq!(s, expected, "{a:?}");
        }
        assert!(State::Closed.after(Action::Cancel).is_err(), "closed is final");
        assert!(State::New.after(Action::Sign).is_err(), "nothing to sign for before dispatch");
        assert!(State::SignedFor.after(Action::Dispatch).is_err());
        assert_eq!(State::EnRoute.after(Action::Cancel), Ok(State::Cancelled));
        assert_eq!(Action::parse("sign"), Some(Action::Sign));
        // Wherever an action is allowed, it leads to the state it names.
        for from in State::ALL {
            for a in [
                Action::Dispatch,
                Action::Sign,
                Action::Depart,
                Action::Arrive,
                Action::Feedback,
                Action::Close,
                Action::Cancel,
            ] {
                if let Ok(to) = from.after(a) {
                    assert_eq!(to, a.leads_to(), "{from:?} {a:?}");
                }
            }
        }
        assert_eq!(Action::parse("teleport"), None);
    }

    #[test]
    fn late_steps_escalate_twice() {
        // A priority-1 incident dispatched at t=0 must be signed for within 60 s.
        let rows = [
            (59_000, Escalation::None),
            (60_000, Escalation::PostLeader),
            (119_999, Escalation::PostLeader),
            (120_000, Escalation::CommandCentre),
        ];
        for (now, expected) in rows {
            assert_eq!(escalation_due(State::Dispatched, 1, 0, now), expected, "{now}");
        }
        assert_eq!(escalation_due(State::Dispatched, 3, 0, 120_000), Escalation::None, "priority 3 has 10 minutes");
        assert_eq!(escalation_due(State::Closed, 1, 0, i64::MAX / 2), Escalation::None);
    }
}
