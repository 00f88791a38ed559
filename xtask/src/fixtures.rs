//! `cargo xtask fixtures [--check]`: regenerate the committed OCI layouts under `fixtures/`,
//! or check they are up to date.

use anyhow::{Context as _, bail};
use tank_testkit::{FIXTURE_NAMES, check_fixtures, fixtures_dir, write_fixtures};

use crate::USAGE;

pub(crate) fn fixtures(options: &[String]) -> anyhow::Result<()> {
    let dir = fixtures_dir();
    match options {
        [] => {
            write_fixtures(&dir)
                .with_context(|| format!("writing fixtures into {}", dir.display()))?;
            for name in FIXTURE_NAMES {
                println!("wrote {}", dir.join(name).display());
            }
            Ok(())
        }
        [check] if check == "--check" => {
            check_fixtures(&dir)?;
            println!("fixtures are up to date");
            Ok(())
        }
        [other, ..] => bail!("unknown option {other:?} for `fixtures`\n{USAGE}"),
    }
}
