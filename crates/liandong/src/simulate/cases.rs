//! What incidents are about (illustrative): their kinds and how often each comes, the
//! titles an operator gives them, their priorities, and the officers' feedback.

use super::support::Rng;

/// What an incident is about: its kind, how often it comes (weight), the titles an
/// operator gives it, and the officer's feedback (illustrative).
pub(super) struct Kind {
    pub(super) kind: &'static str,
    pub(super) weight: f64,
    pub(super) titles: &'static [&'static str],
    pub(super) feedback: &'static [&'static str],
}

const KINDS: [Kind; 7] = [
    Kind {
        kind: "theft",
        weight: 22.0,
        titles: &["电动车被盗", "村民家中财物被盗", "超市货物被盗", "农用机具被盗"],
        feedback: &["已现场勘查，调取周边监控，登记被盗物品", "已固定现场，被盗物品清单已登记，转刑侦跟进"],
    },
    Kind {
        kind: "dispute",
        weight: 22.0,
        titles: &["邻里纠纷", "土地边界纠纷", "家庭纠纷", "消费纠纷"],
        feedback: &["双方情绪已稳定，现场调解达成一致", "已现场劝解，引导双方到调解中心调解"],
    },
    Kind {
        kind: "traffic",
        weight: 18.0,
        titles: &["两车刮擦交通事故", "摩托车与三轮车相撞", "货车占道堵塞交通"],
        feedback: &["已疏导交通，双方协商处理，无人员受伤", "已拍照固定现场，移交交警处理"],
    },
    Kind {
        kind: "fight",
        weight: 8.0,
        titles: &["酒后斗殴", "群众打架", "聚众闹事"],
        feedback: &["已控制现场，当事人带回所里调查", "双方已分开，伤者送医，已做笔录"],
    },
    Kind {
        kind: "fraud",
        weight: 8.0,
        titles: &["电信诈骗报警", "冒充客服诈骗", "刷单返利诈骗"],
        feedback: &["已指导报警人止付并固定证据，已立案登记", "已核实，系诈骗未遂，已开展防骗宣传"],
    },
    Kind {
        kind: "noise",
        weight: 8.0,
        titles: &["夜间噪音扰民", "广场舞噪音扰民", "装修噪音扰民"],
        feedback: &["已劝导，噪音已停止", "已与当事人沟通，约定活动时间"],
    },
    Kind {
        kind: "other",
        weight: 14.0,
        titles: &["老人走失", "车辆陷入路边沟渠求助", "可疑人员徘徊", "醉酒人员倒卧路边"],
        feedback: &["已处置完毕，当事人已送回家中", "已到场核实，情况已处置"],
    },
];
/// Priorities 1 (highest) to 5 and how often each is given: mostly 3 and 4.
const PRIORITY_WEIGHTS: [f64; 5] = [2.0, 8.0, 45.0, 37.0, 8.0];

/// A kind and title for an incident opened by hand, and its priority.
pub(super) fn draw_case(rng: &mut Rng) -> (&'static Kind, &'static str, u8) {
    let kind = &KINDS[rng.weighted(&KINDS.map(|k| k.weight))];
    let title = kind.titles[rng.below(kind.titles.len())];
    let priority = rng.weighted(&PRIORITY_WEIGHTS) as u8 + 1;
    (kind, title, priority)
}

/// The officer's feedback on the kinds an incident takes from an alert or a report
/// (illustrative).
const OTHER_FEEDBACK: [(&str, &[&str]); 5] = [
    (
        "watchlist_plate",
        &["已在卡口附近设卡盘查，布控车辆已拦停移交", "已沿车辆去向搜寻，未发现布控车辆，已通报周边卡口"],
    ),
    ("fire", &["明火已扑灭，已对焚烧人员批评教育", "已协助消防处置，火情已控制"]),
    ("hazard", &["已设置警示标志，已通知交通部门清理", "隐患已排除"]),
    ("suspicious", &["已核查车辆及人员身份，系探亲访友，无异常", "已登记可疑人员信息，纳入重点关注"]),
    ("grid_report", &["已到场核实，情况已处置"]),
];

pub(super) fn feedback_note(kind: &str, rng: &mut Rng) -> &'static str {
    let notes = KINDS
        .iter()
        .find(|k| k.kind == kind)
        .map(|k| k.feedback)
        .or_else(|| OTHER_FEEDBACK.iter().find(|(k, _)| *k == kind).map(|(_, notes)| *notes))
        .unwrap_or(&["已到场处置完毕"]);
    notes[rng.below(notes.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_mostly_priority_3_and_4_with_known_kinds() {
        let mut rng = Rng::new(5);
        let mut by_priority = [0usize; 6];
        for _ in 0..10_000 {
            let (kind, title, priority) = draw_case(&mut rng);
            assert!(kind_is_valid(kind.kind) && !title.is_empty());
            assert!(!feedback_note(kind.kind, &mut rng).is_empty());
            by_priority[priority as usize] += 1;
        }
        assert_eq!(by_priority[0], 0);
        assert!(by_priority[3] + by_priority[4] > 7_500, "{by_priority:?}");
        assert!(by_priority[1] > 0 && by_priority[1] < 500, "{by_priority:?}");
    }

    /// The server's rule for kinds: a short lowercase word.
    fn kind_is_valid(k: &str) -> bool {
        !k.is_empty() && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }
}
