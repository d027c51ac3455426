//! The official labels of the answer scales: the citizen's form and the collectors' paper
//! forms and views say the same words.

use crate::forms::QuestionType;
use crate::i18n::Lang;

/// The label of `level` on a question's scale.
pub fn scale_label(kind: QuestionType, level: i64, lang: Lang) -> &'static str {
    match (kind, level) {
        (QuestionType::Scale5, 1) => lang.pick("Rất không hài lòng", "Very dissatisfied"),
        (QuestionType::Scale5, 2) => lang.pick("Không hài lòng", "Dissatisfied"),
        (QuestionType::Scale5, 3) => lang.pick("Bình thường", "Neutral"),
        (QuestionType::Scale5, 4) => lang.pick("Hài lòng", "Satisfied"),
        (QuestionType::Scale5, 5) => lang.pick("Rất hài lòng", "Very satisfied"),
        (QuestionType::Scale5, _) => lang.pick("Không trả lời", "No answer"),
        (_, 1) => lang.pick("Không hài lòng", "Dissatisfied"),
        (_, 2) => lang.pick("Hài lòng", "Satisfied"),
        (_, _) => lang.pick("Rất hài lòng", "Very satisfied"),
    }
}
