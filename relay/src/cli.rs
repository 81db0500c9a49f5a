//! How the two programs' command lines read values, the way virevent-watch
//! reads them: `--name VALUE` or `--name=VALUE`, whole numbers of digits only,
//! seconds with an optional fraction.

use std::time::Duration;

/// A command-line mistake: the message says what and how to do it right.
#[derive(Debug)]
pub struct Usage(pub String);

/// Reads `args` as options: `flags` take no value, `valued` take one. Returns
/// each (name, value) in order, a flag with `None`.
pub fn options(
    args: impl IntoIterator<Item = String>,
    flags: &[&str],
    valued: &[&str],
) -> Result<Vec<(String, Option<String>)>, Usage> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        if flags.contains(&name.as_str()) {
            if inline.is_some() {
                return Err(Usage(format!("option '{name}' takes no value")));
            }
            out.push((name, None));
        } else if valued.contains(&name.as_str()) {
            let value = inline.or_else(|| args.next()).ok_or_else(|| Usage(format!("option '{name}' needs a value")))?;
            out.push((name, Some(value)));
        } else if arg.starts_with('-') {
            return Err(Usage(format!("unknown option '{arg}'")));
        } else {
            return Err(Usage(format!("unexpected argument '{arg}'")));
        }
    }
    Ok(out)
}

/// A whole number (digits only) of `what` for `option`.
pub fn whole<T: std::str::FromStr>(option: &str, what: &str, value: &str) -> Result<T, Usage> {
    match value.parse::<T>() {
        Ok(n) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(Usage(format!("{option} wants a whole number of {what}, not '{value}'"))),
    }
}

/// Decimal seconds for `option` (`2`, `0.5`, `.5`).
pub fn seconds(option: &str, value: &str) -> Result<Duration, Usage> {
    let (int, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let well_formed = !(int.is_empty() && fraction.is_empty()) && digits(int) && digits(fraction);
    well_formed
        .then(|| value.parse::<f64>().ok())
        .flatten()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| Usage(format!("{option} wants decimal seconds (like 2 or 0.5), not '{value}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_read_both_spellings_and_refuse_the_rest() {
        let args = ["--a", "1", "--b=2", "-f"].map(String::from);
        let got = options(args, &["-f"], &["--a", "--b"]).unwrap();
        assert_eq!(got, [("--a".into(), Some("1".into())), ("--b".into(), Some("2".into())), ("-f".into(), None)]);
        assert!(options(["--x".to_string()], &[], &[]).unwrap_err().0.contains("unknown option '--x'"));
        assert!(options(["--a".to_string()], &[], &["--a"]).unwrap_err().0.contains("needs a value"));
        assert!(options(["--f=1".to_string()], &["--f"], &[]).unwrap_err().0.contains("takes no value"));
        assert!(options(["x".to_string()], &[], &[]).unwrap_err().0.contains("unexpected argument"));
    }

    #[test]
    fn numbers_are_digits_and_seconds_decimal() {
        assert_eq!(whole::<u64>("--n", "events", "12").unwrap(), 12);
        assert!(whole::<u64>("--n", "events", "+1").is_err());
        assert!(whole::<u64>("--n", "events", "").is_err());
        assert_eq!(seconds("--t", ".5").unwrap(), Duration::from_millis(500));
        assert!(seconds("--t", "1e3").is_err());
        assert!(seconds("--t", ".").is_err());
    }
}
