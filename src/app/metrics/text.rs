//! The textfile format as this tool writes it: metric families, each with
//! its `# HELP`/`# TYPE` head and its samples, each sample credited to the
//! command that wrote it; read back and merged so that a command replaces
//! only its own samples.

use std::fmt::Write as _;

/// One metric: its `# HELP` and `# TYPE` lines, then its samples, each
/// with the command that wrote it.
pub(super) struct Family {
    pub(crate) name: String,
    /// The `# HELP` and `# TYPE` lines, each with its newline.
    pub(crate) head: String,
    pub(crate) samples: Vec<Sample>,
}

/// One sample line and the command that wrote it.
pub(super) struct Sample {
    pub(crate) command: String,
    /// The whole line: name, labels and value.
    pub(crate) line: String,
}

/// The families of a file this tool wrote. A sample without a `command`
/// label comes from a version before the label: whose it was is unknown,
/// so it is dropped rather than credited to a command.
pub(super) fn parse(text: &str) -> Vec<Family> {
    let mut families: Vec<Family> = Vec::new();
    for line in text.lines() {
        let (name, sample) = if let Some(rest) = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
        {
            (rest.split(' ').next().unwrap_or(""), None)
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else {
            let Some(command) = label(line, "command") else {
                continue;
            };
            let name = line.split(['{', ' ']).next().unwrap_or("");
            let sample = Sample {
                command: command.to_string(),
                line: line.to_string(),
            };
            (name, Some(sample))
        };
        let at = match families.iter().position(|f| f.name == name) {
            Some(at) => at,
            None => {
                families.push(Family {
                    name: name.to_string(),
                    head: String::new(),
                    samples: Vec::new(),
                });
                families.len() - 1
            }
        };
        match sample {
            Some(sample) => families[at].samples.push(sample),
            None => {
                families[at].head.push_str(line);
                families[at].head.push('\n');
            }
        }
    }
    families
}

/// The value of label `key` in a sample line (this tool's values hold no
/// quotes).
fn label<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let (_, labels) = line.split_once('{')?;
    let (labels, _) = labels.split_once('}')?;
    labels.split(',').find_map(|pair| {
        pair.strip_prefix(key)?
            .strip_prefix("=\"")?
            .strip_suffix('"')
    })
}

/// Returns the value of `metric` that `command` last wrote, in whole units
/// (it reads back a timestamp).
pub(super) fn previous(old: &[Family], metric: &str, command: &str) -> Option<i64> {
    old.iter()
        .find(|f| f.name == metric)?
        .samples
        .iter()
        .find(|s| s.command == command)
        .and_then(|s| s.line.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
}

/// The new run's families with the other commands' samples of the old
/// file added (a family only the old file has keeps its head): one block
/// per metric, as the text format wants. Metrics by name and samples by
/// command, so the layout does not depend on which command wrote last.
pub(super) fn merge(old: Vec<Family>, new: Vec<Family>, command: &str) -> String {
    let mut all = new;
    for mut family in old {
        family.samples.retain(|s| s.command != command);
        match all.iter_mut().find(|f| f.name == family.name) {
            Some(f) => f.samples.extend(family.samples),
            None => all.push(family),
        }
    }
    all.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = String::new();
    for family in &mut all {
        if family.samples.is_empty() {
            continue;
        }
        // Stable: a command's samples keep their order.
        family.samples.sort_by(|a, b| a.command.cmp(&b.command));
        out.push_str(&family.head);
        for sample in &family.samples {
            out.push_str(&sample.line);
            out.push('\n');
        }
    }
    out
}

/// One command's families as it builds them, `command` first among each
/// sample's labels.
pub(super) struct Gauges<'a> {
    command: &'a str,
    out: Vec<Family>,
}

impl<'a> Gauges<'a> {
    /// Starts the families of `command`.
    pub(super) fn new(command: &'a str) -> Self {
        Self {
            command,
            out: Vec::new(),
        }
    }

    /// Adds the gauge `name` with its `help`, one sample per entry: a label
    /// besides `command`, if any, and the value.
    pub(super) fn gauge(
        &mut self,
        name: &str,
        help: &str,
        samples: &[(Option<(&str, &str)>, String)],
    ) {
        let samples = samples
            .iter()
            .map(|(label, value)| {
                let mut line = format!("{name}{{command=\"{}\"", self.command);
                if let Some((key, v)) = label {
                    let _ = write!(line, ",{key}=\"{v}\"");
                }
                let _ = write!(line, "}} {value}");
                Sample {
                    command: self.command.to_string(),
                    line,
                }
            })
            .collect();
        self.out.push(Family {
            name: name.to_string(),
            head: format!("# HELP {name} {help}\n# TYPE {name} gauge\n"),
            samples,
        });
    }

    /// Returns the families built.
    pub(super) fn done(self) -> Vec<Family> {
        self.out
    }
}
