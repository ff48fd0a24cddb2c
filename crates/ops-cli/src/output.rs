use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Fail,
    Skip,
}

/// One verdict: what was checked, what was found, and what to do about a failure.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Fail,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn skip(name: &str, detail: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            status: Status::Skip,
            detail: detail.into(),
            hint: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub ok: bool,
    pub checks: Vec<Check>,
    /// Command-specific data (the dead-letter queue's messages, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<serde_json::Value>,
}

impl Report {
    pub fn new(command: &str) -> Self {
        Self {
            command: command.to_owned(),
            ok: true,
            checks: Vec::new(),
            items: Vec::new(),
        }
    }

    pub fn push(&mut self, check: Check) {
        if check.status == Status::Fail {
            self.ok = false;
        }
        self.checks.push(check);
    }

    pub fn ok(&self) -> bool {
        self.ok
    }

    #[allow(
        clippy::print_stdout,
        reason = "printing the report is the command's output"
    )]
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::to_string_pretty(self).unwrap_or_default());
            return;
        }
        for item in &self.items {
            println!("{item}");
        }
        for c in &self.checks {
            let tag = match c.status {
                Status::Ok => "[ ok ]",
                Status::Fail => "[FAIL]",
                Status::Skip => "[skip]",
            };
            println!("{tag} {}: {}", c.name, c.detail);
            if let Some(hint) = &c.hint {
                println!("       hint: {hint}");
            }
        }
        println!(
            "{}: {}",
            self.command,
            if self.ok {
                "all good"
            } else {
                "problems found"
            }
        );
    }
}
