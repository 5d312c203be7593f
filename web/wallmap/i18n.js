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
    incident_failed: '立案失败：{reason}',
    locate: '定位',
    priority: '{p}级',
    camera: '摄像机',
    plate: '车牌',
    person: '人员',
    reason: '布控原因',
    nearest_post: '最近警务室',
    device: '设备',
    held_back: '抑制 {n} 条',
    silent_min: '已失联 {n} 分钟',
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
    incident_failed: 'Could not open the incident: {reason}',
    locate: 'Show',
    priority: 'P{p}',
    camera: 'Camera',
    plate: 'Plate',
    person: 'Person',
    reason: 'Reason',
    nearest_post: 'Nearest post',
    device: 'Device',
    held_back: '{n} held back',
    silent_min: 'silent for {n} min',
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
