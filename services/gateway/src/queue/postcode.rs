//! The département a French postcode belongs to, as the directory codes
//! them: two digits, Corsica's 2A and 2B, three for overseas.

/// `None` for anything that is not a postcode of a département.
pub fn department(postcode: &str) -> Option<String> {
    let p = postcode.trim();
    if p.len() != 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let two: u32 = p[..2].parse().ok()?;
    match two {
        1..=19 | 21..=95 => Some(p[..2].to_owned()),
        // Corse-du-Sud's postcodes run 20000–20199, Haute-Corse's from 20200.
        20 => Some(if p.as_bytes()[2] < b'2' { "2A" } else { "2B" }.to_owned()),
        97 if matches!(&p[..3], "971" | "972" | "973" | "974" | "976") => Some(p[..3].to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::department;

    #[test]
    fn postcodes_give_their_departement() {
        assert_eq!(department("75011").as_deref(), Some("75"));
        assert_eq!(department("01000").as_deref(), Some("01"));
        assert_eq!(department("20000").as_deref(), Some("2A"));
        assert_eq!(department("20200").as_deref(), Some("2B"));
        assert_eq!(department("97400").as_deref(), Some("974"));
        for bad in ["", "7501", "750011", "7501a", "00100", "96000", "97500", "99999", "２0000"] {
            assert_eq!(department(bad), None, "{bad}");
        }
    }
}
