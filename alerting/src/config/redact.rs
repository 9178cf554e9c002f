//! The configuration as the APIs show it (`/api/v2/status` `config.original`, fenghuo's
//! `/api/v1/alerting/config`): every secret replaced by `<secret>`, as Alertmanager marshals its
//! `Secret` and `SecretURL` fields. Alertmanager re-marshals the parsed config too, so comments and
//! the original layout are not kept. fenghuo also hides webhook URLs (current Alertmanager makes
//! them `SecretURL`; robot URLs of DingTalk/WeCom/Feishu carry their access tokens).

use serde_yaml::Value;

/// What Alertmanager prints for a set secret.
pub const SECRET: &str = "<secret>";

/// Keys whose values are secrets wherever they appear.
const SECRET_KEYS: &[&str] = &[
    // global
    "smtp_auth_password",
    "smtp_auth_secret",
    "slack_api_url",
    "opsgenie_api_key",
    "victorops_api_key",
    "wechat_api_secret",
    "telegram_bot_token",
    "rocketchat_token",
    "rocketchat_token_id",
    "mattermost_webhook_url",
    // http_config (basic_auth.password, authorization.credentials, oauth2.client_secret, TLS key)
    "password",
    "credentials",
    "bearer_token",
    "client_secret",
    "key",
    // receivers
    "auth_password",
    "auth_secret",
    "api_key",
    "api_secret",
    "routing_key",
    "service_key",
    "user_key",
    "token",
    "bot_token",
    "secret",
    "webhook_url",
    "secret_key",
];

/// Keys that are secrets only inside one kind of integration.
const SECRET_IN: &[(&str, &str)] = &[
    ("slack_configs", "api_url"),
    ("webhook_configs", "url"),
    ("msteams_configs", "webhook_url"),
    ("discord_configs", "webhook_url"),
];

/// The config text with secrets replaced by `<secret>`; text that does not parse as YAML (never
/// the case for a loaded config) is hidden entirely rather than shown.
pub fn redact(text: &str) -> String {
    let Ok(mut v) = serde_yaml::from_str::<Value>(text) else {
        return SECRET.to_string();
    };
    walk(&mut v, None);
    serde_yaml::to_string(&v).unwrap_or_else(|_| SECRET.to_string())
}

/// `list` is the integration list key (`webhook_configs`...) the value sits under, if any.
fn walk(v: &mut Value, list: Option<&str>) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                let key = k.as_str().unwrap_or_default().to_string();
                let secret = SECRET_KEYS.contains(&key.as_str())
                    || list.is_some_and(|l| SECRET_IN.iter().any(|(i, f)| *i == l && *f == key));
                if key == "match" || key == "match_re" {
                    // Label names such as `token` are not secrets.
                    continue;
                }
                if secret && !is_empty(val) {
                    *val = Value::String(SECRET.to_string());
                } else if key == "proxy_url"
                    && let Value::String(u) = val
                {
                    *u = redact_url_password(u);
                } else if key.ends_with("_configs") {
                    walk(val, Some(&key));
                } else {
                    walk(val, list);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(|x| walk(x, list)),
        Value::Tagged(t) => walk(&mut t.value, list),
        _ => {}
    }
}

/// A URL with its password shown as `<secret>`, as Prometheus shows `proxy_url`; text that is
/// not a URL but has an `@` is hidden whole.
fn redact_url_password(u: &str) -> String {
    match url::Url::parse(u) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some(SECRET));
            }
            parsed.to_string()
        }
        Err(_) if u.contains('@') => SECRET.to_string(),
        Err(_) => u.to_string(),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_become_secret_markers() {
        let text = r#"
global:
  smtp_auth_password: hunter2
  slack_api_url: https://hooks.slack.com/services/S1
  smtp_from: a@b
route: {receiver: a, routes: [{receiver: a, match: {token: visible}}]}
receivers:
- name: a
  webhook_configs:
  - url: http://hook/S2?token=S3
    http_config: {basic_auth: {username: bob, password: S4}, authorization: {credentials: S5}}
  slack_configs: [{api_url: 'https://hooks.slack.com/services/S6', channel: c}]
  dingtalk_configs: [{webhook_url: 'https://oapi.dingtalk.com/robot/send?access_token=S7', secret: S8}]
  wecom_configs: [{webhook_url: 'https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=S9'}]
  feishu_configs: [{webhook_url: 'https://open.feishu.cn/open-apis/bot/v2/hook/S10', secret: S11}]
  email_configs: [{to: x@y, auth_password: S12, auth_username: u}]
"#;
        let out = redact(text);
        for i in 1..=12 {
            assert!(!out.contains(&format!("S{i}")), "S{i} leaked:\n{out}");
        }
        assert!(out.contains("smtp_auth_password: <secret>"), "{out}");
        assert!(out.contains("username: bob"), "{out}");
        assert!(out.contains("auth_username: u"), "{out}");
        assert!(out.contains("channel: c"), "{out}");
        assert!(out.contains("smtp_from: a@b"), "{out}");
        assert!(
            out.contains("token: visible"),
            "label names are not secrets: {out}"
        );
        // An unset secret stays unset (Alertmanager omits empty secrets).
        assert!(redact("global: {smtp_auth_password: ''}\n").contains("smtp_auth_password: ''"));
    }
}
