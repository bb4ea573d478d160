//! A map kept as a short list: the client's maps hold a handful of entries (calls, tabs,
//! watched users, sessions), and a linear search is smaller in the bundle than a B-tree or a
//! hash table, and as fast at this size.

#[derive(Clone, Debug)]
pub struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self { entries: vec![] }
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    pub fn get<Q: PartialEq<K> + ?Sized>(&self, key: &Q) -> Option<&V> {
        self.entries.iter().find(|(k, _)| key == k).map(|(_, v)| v)
    }

    pub fn contains_key<Q: PartialEq<K> + ?Sized>(&self, key: &Q) -> bool {
        self.get(key).is_some()
    }

    pub fn insert(&mut self, key: K, value: V) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    pub fn remove<Q: PartialEq<K> + ?Sized>(&mut self, key: &Q) {
        self.entries.retain(|(k, _)| key != k);
    }

    /// The value for `key`, inserted as `V::default()` when missing.
    pub fn entry(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let at = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                self.entries.push((key, V::default()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    pub fn into_values(self) -> impl Iterator<Item = V> {
        self.entries.into_iter().map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map() {
        let mut m: SmallMap<String, u32> = SmallMap::default();
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        m.insert("a".into(), 3);
        assert_eq!(m.get("a"), Some(&3));
        *m.entry("c".into()) += 5;
        *m.entry("c".into()) += 1;
        assert_eq!(m.get("c"), Some(&6));
        m.remove("b");
        assert!(!m.contains_key("b"));
        assert_eq!(m.values().sum::<u32>(), 9);
    }
}
