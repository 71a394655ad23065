//! The smallest possible process between an editor and a language server: it starts the
//! server given on its command line and copies bytes both ways, one blocking thread per
//! direction, without reading them. The proxy benchmark runs it as the floor: what any
//! process in the middle costs on the machine, before it does anything with a message.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        eprintln!("usage: byte-relay PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let mut child = match Command::new(&program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(error) => {
            eprintln!(
                "byte-relay: cannot start {}: {error}",
                program.to_string_lossy()
            );
            return ExitCode::FAILURE;
        }
    };
    let (Some(mut to_server), Some(mut from_server)) = (child.stdin.take(), child.stdout.take())
    else {
        eprintln!("byte-relay: the server's pipes are missing");
        return ExitCode::FAILURE;
    };
    // Unbuffered handles of our own stdin and stdout, so every read goes out in one write.
    let (stdin, stdout) = match (
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
    ) {
        (Ok(stdin), Ok(stdout)) => (File::from(stdin), File::from(stdout)),
        _ => {
            eprintln!("byte-relay: cannot reach its own stdin and stdout");
            return ExitCode::FAILURE;
        }
    };
    let upstream = std::thread::spawn(move || copy(&mut &stdin, &mut to_server));
    copy(&mut from_server, &mut &stdout);
    drop(upstream);
    match child.wait() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// Copies until either side closes; every read is written out at once.
fn copy(from: &mut impl Read, to: &mut impl Write) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).is_err() {
            return;
        }
    }
}
