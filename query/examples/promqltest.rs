//! Runs one promqltest file (or all files of a directory) verbosely:
//! `cargo run -p fenghuo-query --example promqltest -- FILE...`.
//! With `-e 'QUERY' -t TIME_MS`, evaluates a single query over the file's
//! first load instead.

#[path = "../tests/promqltest_runner/mod.rs"]
mod runner;

use runner::Outcome;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("usage: promqltest FILE...");
        std::process::exit(2);
    }
    let engine = runner::test_engine();
    let factory: Box<runner::StoreFactory> =
        Box::new(|| Box::new(fenghuo_storage_api::memory::MemStore::new()));
    let mut failed = 0;
    for a in &args {
        let report = runner::run_file(std::path::Path::new(a), &engine, &factory);
        for e in &report.evals {
            let (tag, why) = match &e.outcome {
                Outcome::Pass => ("PASS", String::new()),
                Outcome::Fail(r) => {
                    failed += 1;
                    ("FAIL", format!(" -- {r}"))
                }
                Outcome::Skip(r) => ("SKIP", format!(" -- {r}")),
            };
            let h = if e.histogram { " [hist]" } else { "" };
            println!("{tag} {}:{}{h} {}{why}", report.file, e.line, e.expr);
        }
        let c = report.counts();
        println!(
            "{}: {} pass, {} fail, {} skip",
            report.file, c.pass, c.fail, c.skip
        );
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
