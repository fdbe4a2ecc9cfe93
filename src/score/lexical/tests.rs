use super::check;

#[test]
fn placeholder_supported() {
    assert!(check("Paris is the capital.", &["The capital is Paris."]).score < 0.01);
}
