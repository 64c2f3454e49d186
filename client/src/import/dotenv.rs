//! dotenv files: `KEY=value`, `export KEY=value`, single quotes (literal),
//! double quotes (the usual backslash escapes, may span lines), `#`
//! comments and blank lines. Errors name the line, never a value.

use proto::Secret;

use super::{Found, ParseError};

/// Every assignment in `input`, in order, with the line its value starts on.
pub fn parse(input: &[u8]) -> Result<Vec<Found>, ParseError> {
    let mut p = Parser {
        s: input,
        i: 0,
        line: 1,
    };
    let mut out = Vec::new();
    loop {
        p.skip_blank();
        match p.peek() {
            None => return Ok(out),
            Some(b'\n') => {
                p.newline();
                continue;
            }
            Some(b'\r') if p.at(1) == Some(b'\n') => {
                p.i += 1;
                continue;
            }
            Some(b'#') => {
                p.skip_to_eol();
                continue;
            }
            _ => {}
        }
        if p.s[p.i..].starts_with(b"export") && matches!(p.at(6), Some(b' ' | b'\t')) {
            p.i += 6;
            p.skip_blank();
        }
        let line = p.line;
        let key = p.key().ok_or(ParseError::at(line, "expected KEY=value"))?;
        p.skip_blank();
        if p.peek() != Some(b'=') {
            // Not `{key}`: a line that is only a pasted token parses as one.
            return Err(ParseError::at(line, "expected KEY=value"));
        }
        p.i += 1;
        p.skip_blank();
        let value = match p.peek() {
            Some(b'\'') => p.single_quoted(line)?,
            Some(b'"') => p.double_quoted(line)?,
            _ => p.unquoted(),
        };
        p.end_of_assignment(line, &key)?;
        out.push(Found { key, line, value });
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at(&self, ahead: usize) -> Option<u8> {
        self.s.get(self.i + ahead).copied()
    }

    fn newline(&mut self) {
        self.i += 1;
        self.line += 1;
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn skip_to_eol(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.i += 1;
        }
    }

    /// `[A-Za-z_][A-Za-z0-9_.]*`, as shells and dotenv libraries accept.
    fn key(&mut self) -> Option<String> {
        let start = self.i;
        match self.peek() {
            Some(b) if b.is_ascii_alphabetic() || b == b'_' => self.i += 1,
            _ => return None,
        }
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            self.i += 1;
        }
        Some(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// Up to the end of the line or a ` #` comment, trailing blanks dropped.
    fn unquoted(&mut self) -> Secret {
        let start = self.i;
        let mut end = start;
        while let Some(b) = self.peek() {
            if b == b'\n'
                || (b == b'#' && self.i > start && matches!(self.s[self.i - 1], b' ' | b'\t'))
            {
                break;
            }
            self.i += 1;
            if !matches!(b, b' ' | b'\t' | b'\r') {
                end = self.i;
            }
        }
        self.skip_to_eol();
        Secret::from_slice(&self.s[start..end])
    }

    /// `'...'`: every byte literal, newlines included.
    fn single_quoted(&mut self, line: usize) -> Result<Secret, ParseError> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err(ParseError::at(line, "unterminated single quote")),
                Some(b'\'') => break,
                Some(b'\n') => self.newline(),
                Some(_) => self.i += 1,
            }
        }
        let value = Secret::from_slice(&self.s[start..self.i]);
        self.i += 1;
        Ok(value)
    }

    /// `"..."` with `\n \r \t \\ \" \$ \``; any other backslash is kept.
    /// The end is found first so the value is built in one exact buffer.
    fn double_quoted(&mut self, line: usize) -> Result<Secret, ParseError> {
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err(ParseError::at(line, "unterminated double quote")),
                Some(b'"') => break,
                Some(b'\\') if self.at(1).is_some() => {
                    if self.at(1) == Some(b'\n') {
                        self.line += 1;
                    }
                    self.i += 2;
                }
                Some(b'\n') => self.newline(),
                Some(_) => self.i += 1,
            }
        }
        let raw = &self.s[start..self.i];
        self.i += 1;
        let mut value = Vec::with_capacity(raw.len());
        let mut k = 0;
        while k < raw.len() {
            let b = raw[k];
            if b == b'\\' && k + 1 < raw.len() {
                let unescaped = match raw[k + 1] {
                    b'n' => Some(b'\n'),
                    b'r' => Some(b'\r'),
                    b't' => Some(b'\t'),
                    c @ (b'\\' | b'"' | b'$' | b'`') => Some(c),
                    _ => None,
                };
                if let Some(c) = unescaped {
                    value.push(c);
                    k += 2;
                    continue;
                }
            }
            value.push(b);
            k += 1;
        }
        Ok(Secret::new(value))
    }

    /// After a value: blanks, then the end of the line or a comment.
    fn end_of_assignment(&mut self, line: usize, key: &str) -> Result<(), ParseError> {
        self.skip_blank();
        match self.peek() {
            None | Some(b'\n' | b'#') => {
                self.skip_to_eol();
                Ok(())
            }
            Some(b'\r') if matches!(self.at(1), None | Some(b'\n')) => {
                self.skip_to_eol();
                Ok(())
            }
            _ => Err(ParseError::at(
                line,
                format!("unexpected text after the closing quote of {key}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, usize, String)> {
        parse(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|f| {
                let v = String::from_utf8(f.value.expose().to_vec()).unwrap();
                (f.key, f.line, v)
            })
            .collect()
    }

    #[test]
    fn forms() {
        let got = pairs(
            "# c\n\nA=1\nexport B = two words # note\nC='x # y'\nD=\"a\\\"b\\n\\$c\\q\"\r\nE=\nF=v#not-comment\n",
        );
        let want = [
            ("A", 3, "1"),
            ("B", 4, "two words"),
            ("C", 5, "x # y"),
            ("D", 6, "a\"b\n$c\\q"),
            ("E", 7, ""),
            ("F", 8, "v#not-comment"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|(k, l, v)| (k.to_string(), *l, v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn multiline_quotes_keep_line_numbers() {
        let got = pairs("K='a\nb'\nL=\"c\nd\"\nM=e\n");
        assert_eq!(got[0].1, 1);
        assert_eq!(got[1].1, 3);
        assert_eq!(got[2], ("M".into(), 5, "e".into()));
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        for (input, line) in [
            ("A=1\nnot an assignment s3cr3t\n", 2),
            ("A=1\nB='s3cr3t\n", 2),
            ("A=\"s3cr3t\" s3cr3t\n", 1),
            ("=s3cr3t", 1),
            ("ghp_s3cr3t\n", 1),
        ] {
            let e = parse(input.as_bytes()).err().unwrap();
            assert_eq!(e.place, format!("line {line}"), "{input:?}");
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
    }
}
