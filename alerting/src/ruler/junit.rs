//! JUnit XML results of `fenghuo test rules --junit FILE`, in the shape promtool writes them:
//! one `<testsuite>` per test file (aborted files count an error on their last case, or on a
//! case named `unknown`), one `<testcase>` per test group run, each failure message a
//! `<failure>` element, everything on one line with Go's `encoding/xml` escaping.

/// One test group's case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestCase {
    pub name: String,
    pub failures: Vec<String>,
    pub error: String,
}

/// One test file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestSuite {
    pub name: String,
    pub tests: usize,
    pub failures: usize,
    pub errors: usize,
    pub skipped: usize,
    pub timestamp: String,
    pub cases: Vec<TestCase>,
}

impl TestSuite {
    pub fn new(name: &str) -> Self {
        TestSuite {
            name: name.to_string(),
            ..Default::default()
        }
    }

    fn last_case(&mut self) -> &mut TestCase {
        if self.cases.is_empty() {
            self.case("unknown");
        }
        let n = self.cases.len() - 1;
        &mut self.cases[n]
    }

    /// Starts a test case.
    pub fn case(&mut self, name: &str) {
        self.cases.push(TestCase {
            name: name.to_string(),
            ..Default::default()
        });
        self.tests += 1;
    }

    /// Records a failure of the current case.
    pub fn fail(&mut self, message: &str) {
        self.failures += 1;
        self.last_case().failures.push(message.to_string());
    }

    /// Records that the file could not be run.
    pub fn abort(&mut self, error: &str) {
        self.errors += 1;
        self.last_case().error = error.to_string();
    }
}

/// Go's `xml.EscapeText` as the encoder applies it to attributes and character data.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if !in_xml_range(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn in_xml_range(c: char) -> bool {
    matches!(c as u32, 0x09 | 0x0A | 0x0D | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

/// The whole document, as `xml.NewEncoder(w).Encode(junit)` writes it (no trailing newline).
pub fn to_xml(suites: &[TestSuite]) -> String {
    let mut out = String::from("<testsuites>");
    for s in suites {
        out.push_str(&format!(
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" timestamp=\"{}\">",
            escape(&s.name),
            s.tests,
            s.failures,
            s.errors,
            s.skipped,
            escape(&s.timestamp)
        ));
        for c in &s.cases {
            out.push_str(&format!("<testcase name=\"{}\">", escape(&c.name)));
            for f in &c.failures {
                out.push_str(&format!("<failure>{}</failure>", escape(f)));
            }
            if !c.error.is_empty() {
                out.push_str(&format!("<error>{}</error>", escape(&c.error)));
            }
            out.push_str("</testcase>");
        }
        out.push_str("</testsuite>");
    }
    out.push_str("</testsuites>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_suites_cases_failures_and_errors() {
        let mut a = TestSuite::new("a.yml");
        a.timestamp = "2024-01-02T03:04:05".into();
        a.case("unnamed#0");
        a.case("g<1>");
        a.fail("    expr: \"up\", time: 1m,\n        exp: 'x'");
        let mut b = TestSuite::new("b.yml");
        b.abort("open b.yml: no such file or directory");
        assert_eq!(
            to_xml(&[a, b]),
            "<testsuites><testsuite name=\"a.yml\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"0\" timestamp=\"2024-01-02T03:04:05\"><testcase name=\"unnamed#0\"></testcase><testcase name=\"g&lt;1&gt;\"><failure>    expr: &#34;up&#34;, time: 1m,&#xA;        exp: &#39;x&#39;</failure></testcase></testsuite><testsuite name=\"b.yml\" tests=\"1\" failures=\"0\" errors=\"1\" skipped=\"0\" timestamp=\"\"><testcase name=\"unknown\"><error>open b.yml: no such file or directory</error></testcase></testsuite></testsuites>"
        );
    }
}
