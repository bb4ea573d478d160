//! The largest functions of a wasm module, by the size of their code, named from the module's
//! `name` section: where the bundle's bytes go.

/// `(bytes, name)` of the `n` largest function bodies.
pub fn largest(module: &[u8], n: usize) -> Vec<(usize, String)> {
    let mut imported = 0;
    let mut bodies = vec![];
    let mut names = std::collections::HashMap::new();
    let mut at = 8; // magic and version
    while at < module.len() {
        let id = module[at];
        let Some((size, start)) = leb(module, at + 1) else {
            break;
        };
        let end = (start + size).min(module.len());
        let section = &module[start..end];
        match id {
            2 => imported = count_function_imports(section).unwrap_or(0),
            10 => bodies = body_sizes(section).unwrap_or_default(),
            0 => {
                if let Some(found) = function_names(section) {
                    names = found;
                }
            }
            _ => {}
        }
        at = end;
    }
    let mut out: Vec<(usize, String)> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, size)| {
            let name = names
                .get(&(i + imported))
                .cloned()
                .unwrap_or_else(|| "?".into());
            (size, name)
        })
        .collect();
    out.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    out.truncate(n);
    out
}

/// An unsigned LEB128 number at `at`: its value and the position after it.
fn leb(bytes: &[u8], mut at: usize) -> Option<(usize, usize)> {
    let (mut value, mut shift) = (0usize, 0);
    loop {
        let b = *bytes.get(at)?;
        at += 1;
        value |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b < 0x80 {
            return Some((value, at));
        }
    }
}

fn skip_name(bytes: &[u8], at: usize) -> Option<usize> {
    let (len, at) = leb(bytes, at)?;
    Some(at + len)
}

fn count_function_imports(section: &[u8]) -> Option<usize> {
    let (count, mut at) = leb(section, 0)?;
    let mut functions = 0;
    for _ in 0..count {
        at = skip_name(section, skip_name(section, at)?)?;
        let kind = *section.get(at)?;
        at += 1;
        at = match kind {
            0 => {
                functions += 1;
                leb(section, at)?.1
            }
            // table: element type, then limits
            1 => limits(section, at + 1)?,
            2 => limits(section, at)?,
            // global: value type, mutability
            3 => at + 2,
            _ => return None,
        };
    }
    Some(functions)
}

fn limits(bytes: &[u8], at: usize) -> Option<usize> {
    let flags = *bytes.get(at)?;
    let at = leb(bytes, at + 1)?.1;
    Some(if flags & 1 == 1 {
        leb(bytes, at)?.1
    } else {
        at
    })
}

fn body_sizes(section: &[u8]) -> Option<Vec<usize>> {
    let (count, mut at) = leb(section, 0)?;
    let mut sizes = Vec::with_capacity(count);
    for _ in 0..count {
        let (size, start) = leb(section, at)?;
        sizes.push(size + (start - at));
        at = start + size;
    }
    Some(sizes)
}

/// Function names from a custom section, if it is the `name` section.
fn function_names(section: &[u8]) -> Option<std::collections::HashMap<usize, String>> {
    let (len, at) = leb(section, 0)?;
    if section.get(at..at + len)? != b"name" {
        return None;
    }
    let mut at = at + len;
    let mut names = std::collections::HashMap::new();
    while at < section.len() {
        let kind = section[at];
        let (size, start) = leb(section, at + 1)?;
        if kind == 1 {
            let (count, mut p) = leb(section, start)?;
            for _ in 0..count {
                let (index, q) = leb(section, p)?;
                let (len, q) = leb(section, q)?;
                let name = String::from_utf8_lossy(section.get(q..q + len)?).into_owned();
                names.insert(index, name);
                p = q + len;
            }
        }
        at = start + size;
    }
    Some(names)
}
