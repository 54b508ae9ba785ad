use super::*;

#[test]
fn sampling_admits_the_initial_batches_then_every_nth() {
    let mut s = Sampler::default();
    let admitted: Vec<bool> = (0..8).map(|_| s.admit(2, 3)).collect();
    assert_eq!(
        admitted,
        vec![true, true, false, false, true, false, false, true]
    );
}
