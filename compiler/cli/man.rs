//! `accord man`: the manual page. One page holds every command, with its
//! usage, its description and its options, so it names no page that does
//! not exist (clap_mangen's default lists `accord-check(1)` and the like,
//! which nothing installs).

use clap::{Arg, Command};
use roff::{bold, italic, roman, Inline, Roff};

/// The whole page, in roff.
pub(super) fn page() -> std::io::Result<Vec<u8>> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    commands(&cmd).to_writer(&mut out)?;
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// `COMMANDS`: a subsection per command, its usage, description and options.
fn commands(cmd: &Command) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let usage = sub.clone().render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ").trim();
        roff.control("SS", [usage]);
        let about = sub.get_long_about().or(sub.get_about());
        paragraphs(
            &mut roff,
            &about.map(ToString::to_string).unwrap_or_default(),
        );
        // The global options and `--help` are told once, under OPTIONS.
        let own = sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set() && a.get_id() != "help");
        for arg in own {
            roff.control("TP", []);
            roff.text(arg_header(arg));
            let help = arg.get_long_help().or(arg.get_help());
            paragraphs(
                &mut roff,
                &help.map(ToString::to_string).unwrap_or_default(),
            );
        }
    }
    roff
}

/// Text with blank lines as paragraph breaks inside the current indent.
fn paragraphs(roff: &mut Roff, text: &str) {
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            roff.control("IP", []);
        }
        roff.text([roman(paragraph.replace('\n', " "))]);
    }
}

/// `--host <HOST>`, `-q, --quiet`, `<FILE>`.
fn arg_header(arg: &Arg) -> Vec<Inline> {
    let mut header = Vec::new();
    if arg.is_positional() {
        let name = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string);
        header.push(italic(format!("<{name}>")));
        return header;
    }
    if let Some(short) = arg.get_short() {
        header.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            header.push(roman(", "));
        }
    }
    if let Some(long) = arg.get_long() {
        header.push(bold(format!("--{long}")));
    }
    if arg.get_num_args().is_some_and(|n| n.takes_values()) {
        let name = arg.get_value_names().and_then(|v| v.first()).map_or_else(
            || arg.get_id().to_string().to_uppercase(),
            ToString::to_string,
        );
        header.push(roman(" "));
        header.push(italic(format!("<{name}>")));
    }
    header
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_names_no_other_page_and_holds_every_command() {
        let page = String::from_utf8(super::page().expect("page")).expect("text");
        assert!(!page.contains("(1)"), "names another page:\n{page}");
        for command in ["check", "eval", "options", "fmt", "man"] {
            let heading = format!(".SS \"accord {command}");
            assert!(page.contains(&heading), "{heading} missing:\n{page}");
        }
        assert!(page.contains("\\-\\-search"), "{page}");
    }
}
