//! Collapsing `Input.*` commands into actions a person would name: a mousePressed/mouseReleased
//! pair is one click, a run of key events on one tab is one typing action. Mouse moves and wheel
//! turns are not actions (they are counted with the other unrecorded commands).

use serde::Deserialize;

/// `Input.dispatchMouseEvent` params (the fields that matter here).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MouseEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
    #[serde(default)]
    pub button: Option<String>,
    #[serde(default)]
    pub click_count: Option<u32>,
}

/// `Input.dispatchKeyEvent` params.
#[derive(Debug, Default, Deserialize)]
pub struct KeyEvent {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub modifiers: Option<u32>,
}

/// A pressed mouse button waiting for its release.
#[derive(Clone, Debug, PartialEq)]
pub struct Press {
    pub x: f64,
    pub y: f64,
    pub button: String,
}

/// A click, once the button came up.
#[derive(Clone, Debug, PartialEq)]
pub struct Click {
    pub x: f64,
    pub y: f64,
    pub button: String,
    pub click_count: u32,
}

impl Click {
    pub fn detail(&self) -> String {
        let what = match self.click_count {
            0 | 1 => "click".to_owned(),
            2 => "double click".to_owned(),
            n => format!("{n}-fold click"),
        };
        format!("{} {what} at ({}, {})", self.button, fmt_coord(self.x), fmt_coord(self.y))
    }
}

fn fmt_coord(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v:.1}") }
}

/// What a mouse event means for the recording.
pub enum MouseOutcome {
    /// A move, a wheel turn, or a press still waiting: nothing to record (yet).
    Nothing,
    /// Not an action a person would name: count it.
    Noise,
    Click(Click),
}

/// Feeds one mouse event; `press` is the tab's pending press.
pub fn mouse(ev: &MouseEvent, press: &mut Option<Press>) -> MouseOutcome {
    let button = ev.button.clone().unwrap_or_else(|| "left".to_owned());
    match ev.kind.as_str() {
        "mousePressed" => {
            *press = Some(Press { x: ev.x, y: ev.y, button });
            MouseOutcome::Nothing
        }
        "mouseReleased" => match press.take() {
            Some(p) if p.button == button => MouseOutcome::Click(Click {
                x: p.x,
                y: p.y,
                button,
                click_count: ev.click_count.unwrap_or(1),
            }),
            _ => MouseOutcome::Noise,
        },
        _ => MouseOutcome::Noise,
    }
}

/// Modifier bits of CDP input events.
const ALT: u32 = 1;
const CTRL: u32 = 2;
const META: u32 = 4;

/// The text a key event contributes to a typing run: its text when it types one, `{Key}` for a
/// named key (Enter, Backspace, arrows) or a shortcut (`{Ctrl+a}`), nothing for key-ups, bare
/// modifiers and the raw key-downs whose `char` event carries the text.
pub fn typed(ev: &KeyEvent) -> Option<String> {
    let key = ev.key.as_deref().unwrap_or("");
    let mods = ev.modifiers.unwrap_or(0);
    let text = ev.text.as_deref().unwrap_or("");
    match ev.kind.as_str() {
        "keyDown" | "rawKeyDown" | "char" => {}
        _ => return None,
    }
    if matches!(key, "Shift" | "Control" | "Alt" | "Meta" | "CapsLock") {
        return None;
    }
    let shortcut = mods & (ALT | CTRL | META) != 0;
    if !text.is_empty() && !shortcut && !text.chars().any(char::is_control) {
        return Some(text.to_owned());
    }
    if ev.kind == "char" {
        return (!text.is_empty() && !text.chars().any(char::is_control)).then(|| text.to_owned());
    }
    if key.is_empty() || (ev.kind == "rawKeyDown" && key.chars().count() == 1 && !shortcut) {
        return None;
    }
    let mut name = String::new();
    for (bit, label) in [(CTRL, "Ctrl+"), (ALT, "Alt+"), (META, "Meta+")] {
        if mods & bit != 0 {
            name.push_str(label);
        }
    }
    name.push_str(key);
    Some(format!("{{{name}}}"))
}

/// Key events typed into one tab, not yet recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct TypingRun {
    pub target: Option<String>,
    pub text: String,
    pub keys: u64,
    pub last_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, key: &str, text: &str, modifiers: u32) -> KeyEvent {
        KeyEvent {
            kind: kind.into(),
            key: Some(key.into()),
            text: (!text.is_empty()).then(|| text.into()),
            modifiers: Some(modifiers),
        }
    }

    #[test]
    fn key_events_become_text_and_named_keys() {
        assert_eq!(typed(&key("keyDown", "a", "a", 0)).as_deref(), Some("a"));
        assert_eq!(typed(&key("keyDown", "A", "A", 8)).as_deref(), Some("A"));
        assert_eq!(typed(&key("keyUp", "a", "", 0)), None);
        assert_eq!(typed(&key("keyDown", "Enter", "\r", 0)).as_deref(), Some("{Enter}"));
        assert_eq!(typed(&key("rawKeyDown", "Backspace", "", 0)).as_deref(), Some("{Backspace}"));
        assert_eq!(typed(&key("keyDown", "a", "", 2)).as_deref(), Some("{Ctrl+a}"));
        assert_eq!(typed(&key("keyDown", "Shift", "", 8)), None);
        // DevTools style: rawKeyDown then char with the text.
        assert_eq!(typed(&key("rawKeyDown", "b", "", 0)), None);
        assert_eq!(typed(&key("char", "b", "b", 0)).as_deref(), Some("b"));
    }

    #[test]
    fn press_and_release_make_one_click() {
        let mut press = None;
        let ev = |kind: &str, count| MouseEvent {
            kind: kind.into(),
            x: 10.0,
            y: 20.5,
            button: Some("left".into()),
            click_count: Some(count),
        };
        assert!(matches!(mouse(&ev("mouseMoved", 0), &mut press), MouseOutcome::Noise));
        assert!(matches!(mouse(&ev("mousePressed", 1), &mut press), MouseOutcome::Nothing));
        let MouseOutcome::Click(c) = mouse(&ev("mouseReleased", 1), &mut press) else { panic!("no click") };
        assert_eq!(c.detail(), "left click at (10, 20.5)");
        assert!(press.is_none());
        // A release without a press is not a click.
        assert!(matches!(mouse(&ev("mouseReleased", 1), &mut press), MouseOutcome::Noise));
    }
}
