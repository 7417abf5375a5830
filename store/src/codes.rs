//! Coupon codes drawn from the operating system's CSPRNG.
//!
//! 16 characters from a 32-letter alphabet without look-alikes (no I, O, 0, 1): 80 bits, so a
//! code cannot be guessed, and two codes of the whole service collide with negligible chance.

use domain::coupon::CodeGenerator;
use rand::rngs::OsRng;
use rand::Rng;

const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const LENGTH: usize = 16;

/// The code generator the service uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRngCodes;

impl CodeGenerator for OsRngCodes {
    fn generate(&self, count: usize) -> Vec<String> {
        let mut codes = std::collections::BTreeSet::new();
        while codes.len() < count {
            let code: String = (0..LENGTH)
                .map(|_| ALPHABET[OsRng.gen_range(0..ALPHABET.len())] as char)
                .collect();
            codes.insert(code);
        }
        codes.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_drawn_from_the_alphabet() {
        let codes = OsRngCodes.generate(500);
        assert_eq!(codes.len(), 500);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), 500);
        for code in &codes {
            assert_eq!(code.len(), LENGTH);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)));
        }
    }
}
