// The wall map's two languages. Chinese is the default (the command centre's working
// language); English is chosen with `?lang=en` or the button in the top bar, and kept in
// localStorage so a wall screen that reloads stays in the language it was set to.

const STRINGS = {
  zh: {
    title: '大竹县社会治理联动指挥中心',
    subtitle: '指挥大屏',
    lang_button: 'English',
    logout: '退出',
    login_title: '登录指挥大屏',
    login_hint: '请输入值班令牌（演示：demo-operator-token）',
    login_button: '登录',
    login_bad_token: '令牌无效或无权限，请重新输入。',
    login_failed: '无法连接服务器：{reason}',
    loading: '正在加载县域地图…',
    live: '实时',
    connecting: '连接中',
    offline: '离线',
    offline_banner: '与服务器的实时连接已断开，正在自动重连（第 {n} 次）…  离线期间的事件将在重连后补发。',
    units_online: '在线单位',
    units_total: '单位总数',
    alerts_24h: '24小时告警',
    alerts_p1: '一级告警',
    alert_queue: '告警队列',
    alert_queue_empty: '暂无告警',
    layers: '图层',
    legend_units: '单位状态',
    illustrative_note: '演示数据：除县界外均为示意，非测绘成果',
    open_incident: '立案',
    incident_opened: '已立案 #{id}',
    incident_existing: '该告警已立案 #{id}',
    incident_failed: '立案失败：{reason}',
    locate: '定位',
    acknowledge: '确认',
    acked_line: '已确认 · {who} {time}',
    ack_failed: '确认失败：{reason}',
    priority: '{p}级',
    camera: '摄像机',
    plate: '车牌',
    person: '人员',
    reason: '布控原因',
    nearest_post: '最近警务室',
    device: '设备',
    held_back: '抑制 {n} 条',
    silent_min: '已失联 {n} 分钟',
    plans_pending: '待确认路线',
    list_sep: '、',
    tab_incident: '警情',
    tab_routes: '路线调整',
    tab_stats: '统计',
    close_panel: '关闭',
    open_incidents: '在办警情',
    incidents_empty: '暂无在办警情',
    incident_title: '警情 #{id}',
    incident_none: '在地图上或右侧列表中点击一起警情',
    created_at: '立案',
    kind: '类别',
    township: '乡镇',
    assigned: '处警单位',
    recommended: '推荐处警单位',
    basis_road_time: '按道路行程时间',
    basis_straight_line: '按直线距离（无道路数据）',
    by_road: '车程 {t}',
    as_crow: '直线 {d}',
    fix_age: '{t}前定位',
    dispatch: '派警',
    dispatched_here: '已派',
    no_units: '附近暂无可用单位',
    nearest_posts_title: '最近警务室',
    timeline: '处置经过',
    confirm_again: '再点确认',
    dispatch_ok: '已派警：{name}',
    action_ok: '{action}：警情 #{id}',
    action_failed: '操作失败：{reason}',
    incident_closed_note: '本警情已{state}',
    waited: '已等待 {t}',
    acked_by: '{who} {time} 确认',
    version: '第{n}版',
    no_plans: '暂无路线计划',
    pending_n: '待确认 {n}',
    escalated_n: '已升级 {n}',
    hotspot_title: '热点研判',
    analysed_at: '研判 {time}',
    band: '时段 {label}',
    events_n: '{n} 起事件',
    publicity: '普法宣传重点：',
    no_hotspots: '暂无热点数据',
    stats_title: '警情与告警统计',
    range_24h: '近24小时',
    range_7d: '近7天',
    range_30d: '近30天',
    incidents_total: '警情总数',
    alerts_total: '告警总数',
    open: '在办',
    closed: '已结案',
    response: '响应时间（自立案起）',
    median: '中位',
    p90: 'P90',
    samples: '样本',
    by_kind: '警情类别',
    by_township: '警情乡镇',
    alerts_by_rule: '告警规则',
    mediation: '矛盾调解',
    mediation_line: '发现 {found} · 调解 {mediated} · 成功 {ok}',
    stats_failed: '统计加载失败：{reason}',
    updated_at: '更新于 {time}',
    time_slider: '时间回放',
    live_label: '实时',
    replay_label: '回放 {time}',
    back_to_live: '返回实时',
    replay_banner: '历史回放 {time} — 实时更新已暂停，已暂存 {n} 条，返回实时后补上',
    replay_loading: '正在加载 {time} 的态势…',
    replay_failed: '回放失败：{reason}',
    ago_24h: '24小时前',
    now_mark: '现在',
    track_info: '{value} 轨迹：{n} 个卡口',
    duration: { h: '{h}小时{m}分', m: '{m}分{s}秒', s: '{s}秒' },
    step: {
      to_dispatch: '派警',
      to_sign: '签收',
      to_scene: '到场',
      to_close: '结案',
    },
    state: {
      new: '待派警',
      dispatched: '已派警',
      signed_for: '已签收',
      en_route: '出警途中',
      on_scene: '到达现场',
      feedback: '已反馈',
      closed: '已结案',
      cancelled: '已撤销',
    },
    action: {
      create: '立案',
      dispatch: '派警',
      sign: '签收',
      depart: '出发',
      arrive: '到达现场',
      feedback: '反馈',
      close: '结案',
      cancel: '撤销',
      escalate: '超时升级',
      push: '下发',
      ack: '确认',
      supersede: '被替代',
    },
    escalation: {
      post_leader: '已升级至警务室负责人',
      command_centre: '已升级至指挥中心',
    },
    plan_kind: {
      plan: '研判调整',
      diversion: '临时绕行',
      manual: '人工调整',
    },
    plan_status: {
      pending: '待确认',
      acknowledged: '已确认',
      superseded: '已替代',
    },
    unit_kind: {
      post_officer: '民警',
      patrol_member: '巡防队员',
      patrol_leader: '巡防队长',
      vehicle: '巡逻车',
      other: '其他',
    },
    kinds: {
      theft: '盗窃',
      other: '其他',
    },
    layer: {
      boundary: '县界',
      townships: '乡镇街道',
      grids: '村（社区）网格',
      jurisdictions: '警务室辖区',
      roads: '道路',
      fences: '电子围栏',
      routes: '巡防路线',
      checkpoints: '必巡点',
      posts: '警务室',
      cameras: '摄像机',
      units: '巡防与民警单位',
      alerts: '告警位置',
      incidents: '警情',
      hotspots: '热点区域',
      plans: '当前巡防计划',
      tracks: '布控轨迹',
    },
    camera_kind: {
      checkpoint: '交通卡口',
      skynet: '天网',
      sharp_eyes: '雪亮工程',
      huiyan: '慧眼',
      face: '人脸抓拍',
      parking: '违停抓拍',
    },
    status: {
      moving: '巡逻中',
      idle: '静止',
      busy: '处警中',
      stale: '失联',
      doubtful: '定位可疑',
    },
    rule: {
      watchlist_plate: '布控车辆',
      watchlist_person: '布控人员',
      tagged_zone: '矫正对象进入禁入区域',
      camera_storm: '摄像机告警风暴',
      camera_storm_end: '告警风暴结束',
      grid_report: '网格员上报',
      stale_unit: '单位失联',
      route_off: '偏离巡防路线',
      route_back: '回到巡防路线',
      checkpoint_late: '必巡点迟到',
      checkpoint_skipped: '必巡点漏巡',
    },
    category: {
      dispute: '矛盾纠纷',
      hazard: '安全隐患',
      suspicious: '可疑情况',
      fire: '火情',
      traffic: '交通',
      other: '其他',
    },
  },
  en: {
    title: 'Dazhu County Linkage Command Centre',
    subtitle: 'Wall map',
    lang_button: '中文',
    logout: 'Log out',
    login_title: 'Sign in to the wall map',
    login_hint: 'Enter your duty token (demo: demo-operator-token)',
    login_button: 'Sign in',
    login_bad_token: 'The token is not valid or not allowed here; enter it again.',
    login_failed: 'Cannot reach the server: {reason}',
    loading: 'Loading the county map…',
    live: 'Live',
    connecting: 'Connecting',
    offline: 'Offline',
    offline_banner: 'The live connection to the server is lost; reconnecting by itself (attempt {n})…  Events missed meanwhile are replayed on reconnect.',
    units_online: 'Units online',
    units_total: 'Units',
    alerts_24h: 'Alerts, 24 h',
    alerts_p1: 'Priority 1',
    alert_queue: 'Alert queue',
    alert_queue_empty: 'No alerts',
    layers: 'Layers',
    legend_units: 'Unit status',
    illustrative_note: 'Demo data: everything but the county boundary is illustrative, not survey data',
    open_incident: 'Open incident',
    incident_opened: 'Incident #{id} opened',
    incident_existing: 'Already an incident: #{id}',
    incident_failed: 'Could not open the incident: {reason}',
    locate: 'Show',
    acknowledge: 'Acknowledge',
    acked_line: 'Acknowledged · {who} {time}',
    ack_failed: 'Could not acknowledge: {reason}',
    priority: 'P{p}',
    camera: 'Camera',
    plate: 'Plate',
    person: 'Person',
    reason: 'Reason',
    nearest_post: 'Nearest post',
    device: 'Device',
    held_back: '{n} held back',
    silent_min: 'silent for {n} min',
    plans_pending: 'Routes to ack',
    list_sep: ', ',
    tab_incident: 'Incident',
    tab_routes: 'Route changes',
    tab_stats: 'Statistics',
    close_panel: 'Close',
    open_incidents: 'Open incidents',
    incidents_empty: 'No open incidents',
    incident_title: 'Incident #{id}',
    incident_none: 'Click an incident on the map or in the list on the right',
    created_at: 'Opened',
    kind: 'Kind',
    township: 'Township',
    assigned: 'Assigned',
    recommended: 'Recommended units',
    basis_road_time: 'by travel time on the roads',
    basis_straight_line: 'as the crow flies (no road data)',
    by_road: '{t} by road',
    as_crow: '{d} away',
    fix_age: 'fix {t} ago',
    dispatch: 'Dispatch',
    dispatched_here: 'Sent',
    no_units: 'No unit available nearby',
    nearest_posts_title: 'Nearest posts',
    timeline: 'Timeline',
    confirm_again: 'Click again',
    dispatch_ok: 'Dispatched: {name}',
    action_ok: '{action}: incident #{id}',
    action_failed: 'Could not do it: {reason}',
    incident_closed_note: 'This incident is {state}',
    waited: 'waiting {t}',
    acked_by: 'acknowledged by {who} at {time}',
    version: 'v{n}',
    no_plans: 'No route plans yet',
    pending_n: '{n} pending',
    escalated_n: '{n} escalated',
    hotspot_title: 'Hotspots',
    analysed_at: 'analysed at {time}',
    band: 'band {label}',
    events_n: '{n} events',
    publicity: 'Legal publicity focus:',
    no_hotspots: 'No hotspot data',
    stats_title: 'Incidents and alerts',
    range_24h: 'Last 24 h',
    range_7d: 'Last 7 days',
    range_30d: 'Last 30 days',
    incidents_total: 'Incidents',
    alerts_total: 'Alerts',
    open: 'Open',
    closed: 'Closed',
    response: 'Response times (from opening)',
    median: 'Median',
    p90: 'P90',
    samples: 'n',
    by_kind: 'By kind',
    by_township: 'By township',
    alerts_by_rule: 'Alerts by rule',
    mediation: 'Mediation',
    mediation_line: '{found} found · {mediated} mediated · {ok} successful',
    stats_failed: 'Statistics failed: {reason}',
    updated_at: 'updated {time}',
    time_slider: 'Replay',
    live_label: 'Live',
    replay_label: 'REPLAY {time}',
    back_to_live: 'Back to live',
    replay_banner: 'REPLAY {time} — live updates held ({n} so far), applied when you go back to live',
    replay_loading: 'Loading the picture at {time}…',
    replay_failed: 'Replay failed: {reason}',
    ago_24h: '24 h ago',
    now_mark: 'now',
    track_info: '{value} track: {n} cameras',
    duration: { h: '{h} h {m} min', m: '{m} min {s} s', s: '{s} s' },
    step: {
      to_dispatch: 'Dispatch',
      to_sign: 'Sign for',
      to_scene: 'On scene',
      to_close: 'Close',
    },
    state: {
      new: 'New',
      dispatched: 'Dispatched',
      signed_for: 'Signed for',
      en_route: 'En route',
      on_scene: 'On scene',
      feedback: 'Feedback given',
      closed: 'Closed',
      cancelled: 'Cancelled',
    },
    action: {
      create: 'Opened',
      dispatch: 'Dispatch',
      sign: 'Sign for',
      depart: 'Set off',
      arrive: 'Arrived',
      feedback: 'Feedback',
      close: 'Close',
      cancel: 'Cancel',
      escalate: 'Escalated (late)',
      push: 'Pushed',
      ack: 'Acknowledged',
      supersede: 'Superseded',
    },
    escalation: {
      post_leader: 'Escalated to the post leader',
      command_centre: 'Escalated to the command centre',
    },
    plan_kind: {
      plan: 'Re-plan',
      diversion: 'Diversion',
      manual: 'Manual',
    },
    plan_status: {
      pending: 'Pending',
      acknowledged: 'Acknowledged',
      superseded: 'Superseded',
    },
    unit_kind: {
      post_officer: 'Post officer',
      patrol_member: 'Patrol member',
      patrol_leader: 'Patrol leader',
      vehicle: 'Vehicle',
      other: 'Other',
    },
    kinds: {
      theft: 'Theft',
      other: 'Other',
    },
    layer: {
      boundary: 'County boundary',
      townships: 'Townships',
      grids: 'Village grids',
      jurisdictions: 'Post jurisdictions',
      roads: 'Roads',
      fences: 'Geofences',
      routes: 'Patrol routes',
      checkpoints: 'Checkpoints',
      posts: 'Police posts',
      cameras: 'Cameras',
      units: 'Patrols and officers',
      alerts: 'Alert places',
      incidents: 'Incidents',
      hotspots: 'Hotspot heat',
      plans: 'Current patrol plans',
      tracks: 'Watch-list tracks',
    },
    camera_kind: {
      checkpoint: 'Traffic checkpoint',
      skynet: 'Skynet',
      sharp_eyes: 'Sharp Eyes',
      huiyan: 'Huiyan',
      face: 'Face capture',
      parking: 'Parking capture',
    },
    status: {
      moving: 'Patrolling',
      idle: 'Stationary',
      busy: 'On a call',
      stale: 'Not heard from',
      doubtful: 'Doubtful fix',
    },
    rule: {
      watchlist_plate: 'Watch-listed plate',
      watchlist_person: 'Watch-listed person',
      tagged_zone: 'Tagged person in a forbidden zone',
      camera_storm: 'Camera alert storm',
      camera_storm_end: 'Camera storm over',
      grid_report: 'Grid member report',
      stale_unit: 'Unit not heard from',
      route_off: 'Off the patrol route',
      route_back: 'Back on the route',
      checkpoint_late: 'Checkpoint late',
      checkpoint_skipped: 'Checkpoint skipped',
    },
    category: {
      dispute: 'Dispute',
      hazard: 'Hazard',
      suspicious: 'Suspicious',
      fire: 'Fire',
      traffic: 'Traffic',
      other: 'Other',
    },
  },
};

const KEY = 'liandong.lang';

/** The language in force: `?lang=` wins (and is remembered), then the stored choice, then Chinese. */
export function initialLang() {
  const asked = new URLSearchParams(location.search).get('lang');
  if (asked === 'en' || asked === 'zh') {
    localStorage.setItem(KEY, asked);
    return asked;
  }
  return localStorage.getItem(KEY) === 'en' ? 'en' : 'zh';
}

let lang = 'zh';

export function setLang(next) {
  lang = next === 'en' ? 'en' : 'zh';
  localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === 'en' ? 'en' : 'zh-CN';
  for (const el of document.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
  document.title = `${t('title')} · ${t('subtitle')}`;
}

export function currentLang() {
  return lang;
}

/** The string at a dotted `path` with `{name}` placeholders filled; the path itself when missing. */
export function t(path, params = {}) {
  let v = STRINGS[lang];
  for (const part of path.split('.')) v = v?.[part];
  if (typeof v !== 'string') {
    // A rule or kind the page does not know yet is shown by its name rather than hidden.
    return path.split('.').pop();
  }
  return v.replace(/\{(\w+)\}/g, (_, k) => String(params[k] ?? ''));
}

/** Whether a string exists at `path` in the current language. */
export function has(path) {
  let v = STRINGS[lang];
  for (const part of path.split('.')) v = v?.[part];
  return typeof v === 'string';
}

/**
 * What an incident kind, an alert rule or a report category is called: incidents take
 * their kind from the alert's rule, the report's category or the operator's word.
 */
export function kindName(k) {
  for (const table of ['rule', 'category', 'kinds']) if (has(`${table}.${k}`)) return t(`${table}.${k}`);
  return k ?? '';
}

/** A duration in seconds as the wall reads it: `4分12秒`, `1 h 5 min`. */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 3600) return t('duration.h', { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  if (s >= 60) return t('duration.m', { m: Math.floor(s / 60), s: s % 60 });
  return t('duration.s', { s });
}

/** A distance in metres: `850 m`, `3.2 km`. */
export function distance(m) {
  return m >= 1000 ? `${(m / 1000).toFixed(1)} km` : `${Math.round(m)} m`;
}

/** Township names in English by their Chinese names (from the map's townships layer). */
const placesEn = new Map();

export function setPlaceNames(pairs) {
  for (const [zh, en] of pairs) if (zh && en) placesEn.set(zh, en);
}

/** A township named by the server (in Chinese), in the current language. */
export function placeName(name) {
  return lang === 'en' ? placesEn.get(name) ?? name : name;
}

/** A feature's name in the current language (`name_en` where the map has one). */
export function featureName(props) {
  if (!props) return '';
  return lang === 'en' && props.name_en ? props.name_en : props.name ?? '';
}

const CHINA_TIME = { timeZone: 'Asia/Shanghai', hour12: false };

/** A time of day in China time, whatever the wall screen's own clock zone. */
export function clock(ms, withSeconds = true) {
  return new Date(ms).toLocaleTimeString(lang === 'en' ? 'en-GB' : 'zh-CN', {
    ...CHINA_TIME,
    hour: '2-digit',
    minute: '2-digit',
    ...(withSeconds ? { second: '2-digit' } : {}),
  });
}

export function dateLine(ms) {
  return new Date(ms).toLocaleDateString(lang === 'en' ? 'en-GB' : 'zh-CN', {
    ...CHINA_TIME,
    year: 'numeric',
    month: lang === 'en' ? 'short' : 'long',
    day: 'numeric',
    weekday: 'short',
  });
}
