//! Long work shows how far it got when stderr is not a terminal: plain
//! lines with counts, paced by `--progress-every` (zero here: every update).
use crate::helpers::*;

#[tokio::test]
async fn a_dry_run_resync_prints_progress_lines_with_counts_on_a_pipe() {
    let app = TestApp::spawn().await;
    app.plumm(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1500)
         INSERT INTO users (company_id, email, first_name, last_name, role, department, location, country)
         SELECT 1, 'bulk' || i || '@contoso.com', 'B', 'U' || i, 'Engineer', 'Ops', 'London', 'GB' FROM n",
    );
    app.connect(CONTOSO, T1).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_entra-daemon"))
        .arg("--config")
        .arg(&app.config_path)
        .args(["--progress-every", "0s", "resync", "--dry-run"])
        .output()
        .await
        .expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.iter().any(
            |l| l.starts_with("resync company 1 (dry run): listing the tenant: 1 pages listed")
        ),
        "{stderr}"
    );
    let planned: Vec<u64> = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("resync company 1 (dry run): planning: ")?
                .strip_suffix(" people planned")?
                .parse()
                .ok()
        })
        .collect();
    assert!(planned.len() >= 10, "{stderr}");
    assert!(planned.windows(2).all(|w| w[0] < w[1]), "counts only grow");
    assert_eq!(planned.last(), Some(&1500));
    assert!(
        stderr.contains("planned 1500 people: create 1500"),
        "the summary line: {stderr}"
    );
    assert!(app.writes().is_empty(), "a dry run writes nothing");
}
