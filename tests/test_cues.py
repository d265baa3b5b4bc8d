"""Textualized cues from media the tests make themselves: WAV files with known pitch, loudness, rate and
pauses, measured for real with Praat; OpenFace CSVs with known action units over known time spans."""

import json

import numpy as np
import pytest
from media_factory import voice, write_openface_csv, write_wav

from instructerc.cli import main
from instructerc.config import ConfigError
from instructerc.data_builders.cues import audio, openface
from instructerc.data_builders.cues.apply import CueOptions, add_cues, cue_options
from instructerc.data_builders.cues.reference import LEVELS, Reference, level_of
from instructerc.data_builders.cues.wording import describe_prosody
from instructerc.schema import DataError, Dialogue, Utterance, read_dialogues, write_dialogues

LOUDNESS_ORDER = ["very quiet", "quiet", None, "loud", "very loud"]


def _dialogue(n: int, speaker: str = "Ana", dialogue_id: str = "d1", **times) -> Dialogue:
    return Dialogue(dialogue_id, [Utterance(i, speaker, f"utterance {i}") for i in range(n)], split="test")


def _rank(levels: dict, feature: str) -> int:
    return LEVELS.index(levels[feature])


# --------------------------------------------------------------------------- measurement


def test_praat_measures_the_properties_the_signal_was_made_with(tmp_path):
    quiet = audio.extract(write_wav(tmp_path / "q.wav", voice(f0=110, amplitude=0.03, syllables_per_s=2.5)))
    loud = audio.extract(write_wav(tmp_path / "l.wav", voice(f0=260, amplitude=0.5, syllables_per_s=6, vibrato_st=3)))
    paused = audio.extract(write_wav(tmp_path / "p.wav", voice(pause=(0.6, 1.4))))
    assert quiet["pitch_hz"] == pytest.approx(110, rel=0.02)
    assert loud["pitch_hz"] > 2 * quiet["pitch_hz"]
    assert loud["loudness_db"] - quiet["loudness_db"] > 15  # 0.5 / 0.03 is ~24 dB
    assert quiet["speaking_rate"] == pytest.approx(2.5, abs=0.6)
    assert loud["speaking_rate"] == pytest.approx(6.0, abs=1.0)
    assert loud["pitch_variation_st"] > 1.0 > quiet["pitch_variation_st"]
    assert paused["pause_ratio"] > 0.3 and quiet["pause_ratio"] == 0.0
    assert all(isinstance(v, float) for v in loud.values())


def test_silence_gives_no_features_and_a_corrupt_file_a_clear_error(tmp_path):
    silent = audio.extract(write_wav(tmp_path / "s.wav", np.zeros(16000)))
    assert all(v is None for v in silent.values())
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(audio.AudioError, match="not a readable audio file"):
        audio.extract(bad)
    with pytest.raises(audio.AudioError, match="outside the recording"):
        audio.extract(write_wav(tmp_path / "short.wav", voice(seconds=1.0)), start=5.0, end=6.0)


# --------------------------------------------------------------------------- levels and words


def test_levels_are_quantiles_of_the_reference():
    cuts = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert [level_of(v, cuts) for v in (0.5, 1.5, 3.0, 4.5, 9.0)] == list(LEVELS)
    assert level_of(7.0, [7.0] * 5) == "typical"  # a constant reference says nothing stands out


def test_differences_too_small_to_notice_are_typical():
    # Pitch variation of 0.003 vs 0.004 semitones is rounding noise, however it ranks.
    steady = [0.003, 0.0032, 0.0035, 0.0038, 0.004]
    assert level_of(0.0045, steady, "pitch_variation_st") == "typical"
    assert level_of(0.0045, steady) == "very high"
    # Pitch is compared in semitones: 200 Hz is 2.4 semitones above 174 Hz, 176 Hz only 0.2.
    pitch = [150.0, 165.0, 174.0, 178.0, 185.0]
    assert level_of(200.0, pitch, "pitch_hz") == "very high"
    assert level_of(176.0, pitch, "pitch_hz") == "typical"


def test_speaker_reference_differs_from_corpus_reference():
    loud_speaker = [("Ana", {"loudness_db": 80.0 + i}) for i in range(10)]
    quiet_speaker = [("Ben", {"loudness_db": 50.0 + i}) for i in range(10)]
    corpus = Reference.fit(loud_speaker + quiet_speaker, mode="corpus")
    per_speaker = Reference.fit(loud_speaker + quiet_speaker, mode="speaker", min_speaker_values=10)
    # Ana's quietest utterance is unremarkable in the corpus, but very quiet for Ana herself; Ben's loudest
    # is very loud for Ben.
    assert corpus.level("loudness_db", 80.0, "Ana") == "typical"
    assert per_speaker.level("loudness_db", 80.0, "Ana") == "very low"
    assert per_speaker.level("loudness_db", 59.0, "Ben") == "very high"
    # A speaker with too few utterances is described on the corpus scale.
    assert per_speaker.level("loudness_db", 80.0, "Cleo") == corpus.level("loudness_db", 80.0)


def test_description_says_only_what_stands_out():
    text = describe_prosody(
        {"loudness_db": "high", "pitch_hz": "high", "pitch_variation_st": "high", "speaking_rate": "very high"}
    )
    assert text == "loud, high-pitched speech with wide pitch variation, very fast"
    assert describe_prosody({"loudness_db": "typical", "pitch_hz": "typical"}) == (
        "speech of typical pitch and loudness"
    )
    assert "long pauses" in describe_prosody({"pause_ratio": "very high", "hnr_db": "very low"})
    assert describe_prosody({}) is None


# --------------------------------------------------------------------------- audio cues end to end


@pytest.fixture()
def three_voices(tmp_path):
    """One dialogue of three utterances: quiet and low, medium, loud and high (MELD-style file names)."""
    folder = tmp_path / "wav"
    write_wav(folder / "d1_utt0.wav", voice(f0=110, amplitude=0.03))
    write_wav(folder / "d1_utt1.wav", voice(f0=160, amplitude=0.1))
    write_wav(folder / "d1_utt2.wav", voice(f0=260, amplitude=0.5))
    data = tmp_path / "dialogues.jsonl"
    write_dialogues(data, [_dialogue(3)])
    return data, folder


def test_cues_command_describes_the_louder_higher_file_as_louder_and_higher(three_voices, tmp_path, capsys):
    data, folder = three_voices
    out = tmp_path / "with_cues.jsonl"
    code = main(["cues", "--data", str(data), "--audio_dir", str(folder), "--output", str(out), "--no-show_progress"])
    assert code == 0
    (dialogue,), _ = read_dialogues(out)
    quiet, _, loud = dialogue.utterances
    assert "quiet" in quiet.audio_cue and "low-pitched" in quiet.audio_cue
    assert "loud" in loud.audio_cue and "high-pitched" in loud.audio_cue
    assert loud.metadata["prosody"]["loudness_db"] > quiet.metadata["prosody"]["loudness_db"]
    assert (tmp_path / "with_cues.cue_reference.json").is_file()
    assert "3 audio, 0 visual" in capsys.readouterr().out


def test_a_long_recording_is_cut_at_each_utterances_times(tmp_path):
    recording = np.concatenate(
        [voice(f0=120, amplitude=0.03), voice(f0=250, amplitude=0.4), voice(f0=170, amplitude=0.1)]
    )
    write_wav(tmp_path / "wav" / "talk.wav", recording)
    dialogue = Dialogue("talk", [Utterance(i, "Ana", f"part {i}", start=2.0 * i, end=2.0 * i + 2.0) for i in range(3)])
    add_cues([dialogue], CueOptions(audio_dir=str(tmp_path / "wav")), cache_dir=tmp_path / "cache")
    first, second, _ = dialogue.utterances
    assert second.metadata["prosody"]["pitch_hz"] == pytest.approx(250, rel=0.03)
    assert first.metadata["prosody"]["pitch_hz"] == pytest.approx(120, rel=0.03)
    assert "loud" in second.audio_cue and "quiet" in first.audio_cue


def test_audio_index_with_relative_paths_and_spans(tmp_path):
    write_wav(tmp_path / "media" / "a.wav", voice(f0=120, amplitude=0.03))
    write_wav(tmp_path / "media" / "b.wav", np.concatenate([voice(f0=150), voice(f0=240, amplitude=0.5)]))
    index = tmp_path / "index.csv"
    index.write_text("dialogue_id,turn,path,start,end\nd1,0,media/a.wav,,\nd1,1,media/b.wav,2.0,4.0\n")
    dialogue = _dialogue(2)
    add_cues([dialogue], CueOptions(audio_index=str(index)), cache_dir=tmp_path / "cache")
    assert dialogue.utterances[1].metadata["prosody"]["pitch_hz"] == pytest.approx(240, rel=0.03)
    index.write_text("dialogue_id,turn,path\nd1,zero,media/a.wav\n")
    with pytest.raises(DataError, match=r"index.csv:2: turn/start/end"):
        add_cues([_dialogue(2)], CueOptions(audio_index=str(index)), cache_dir=tmp_path / "cache")


def test_corrupt_and_missing_files_are_listed_and_nothing_is_written(three_voices, tmp_path, capsys):
    data, folder = three_voices
    (folder / "d1_utt1.wav").write_bytes(b"not audio at all")
    (folder / "d1_utt2.wav").unlink()
    out = tmp_path / "out.jsonl"
    code = main(["cues", "--data", str(data), "--audio_dir", str(folder), "--output", str(out), "--no-show_progress"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "d1_utt1.wav: not a readable audio file" in err
    assert "turn 2: no file in" in err and "d1_utt2.wav" in err
    assert "on_error" in err  # says how to skip instead
    code = main(
        ["cues", "--data", str(data), "--audio_dir", str(folder), "--output", str(out), "--on_error", "skip",
         "--no-show_progress"]
    )  # fmt: skip
    assert code == 0
    summary = capsys.readouterr().out
    assert "1 audio" in summary and "1 no audio file" in summary and "1 unreadable audio" in summary
    (dialogue,), _ = read_dialogues(out)
    assert dialogue.utterances[0].audio_cue and dialogue.utterances[1].audio_cue is None


def test_cue_texts_in_the_data_are_kept_unless_overwrite(three_voices, tmp_path):
    _, folder = three_voices
    dialogue = _dialogue(3)
    dialogue.utterances[0].audio_cue = "whispered"
    summary = add_cues([dialogue], CueOptions(audio_dir=str(folder)), cache_dir=tmp_path / "cache")
    assert dialogue.utterances[0].audio_cue == "whispered" and summary.kept["audio"] == 1
    add_cues([dialogue], CueOptions(audio_dir=str(folder), overwrite=True), cache_dir=tmp_path / "cache")
    assert dialogue.utterances[0].audio_cue != "whispered"


def test_measurements_are_cached_and_a_saved_scale_is_reused(three_voices, tmp_path):
    _, folder = three_voices
    first = add_cues([_dialogue(3)], CueOptions(audio_dir=str(folder)), cache_dir=tmp_path / "cache")
    again = add_cues([_dialogue(3)], CueOptions(audio_dir=str(folder)), cache_dir=tmp_path / "cache")
    assert first.cache_hits == 0 and again.cache_hits == 3
    first.reference.save(tmp_path / "scale.json")
    # A new dialogue with one medium-loud utterance: on its own scale everything is typical; on the saved
    # corpus scale it is described relative to the quiet and loud voices it was fitted on.
    write_wav(tmp_path / "new" / "n1_utt0.wav", voice(f0=255, amplitude=0.45))
    new = _dialogue(1, dialogue_id="n1")
    add_cues([new], CueOptions(audio_dir=str(tmp_path / "new"), reference_file=str(tmp_path / "scale.json")))
    assert "loud" in new.utterances[0].audio_cue


def test_parallel_workers_give_the_same_cues(three_voices, tmp_path):
    _, folder = three_voices
    serial, parallel = _dialogue(3), _dialogue(3)
    add_cues([serial], CueOptions(audio_dir=str(folder)), cache_dir=tmp_path / "c1")
    add_cues([parallel], CueOptions(audio_dir=str(folder), workers=2), cache_dir=tmp_path / "c2")
    assert [u.audio_cue for u in serial.utterances] == [u.audio_cue for u in parallel.utterances]


# --------------------------------------------------------------------------- OpenFace


def test_openface_action_units_over_time_spans(tmp_path):
    write_openface_csv(
        tmp_path / "d1.csv",
        seconds=3.0,
        active=[(0.0, 1.0, {6: 3.4, 12: 3.8}), (1.2, 2.0, {4: 1.5}), (2.1, 3.0, {12: 4.5})],
        low_confidence=[(2.05, 3.0)],  # the last smile is tracked badly: it must not be described
    )
    dialogue = Dialogue(
        "d1", [Utterance(i, "Ana", f"u{i}", start=s, end=e) for i, (s, e) in enumerate([(0, 1), (1.1, 2), (2.1, 3)])]
    )
    summary = add_cues([dialogue], CueOptions(openface_dir=str(tmp_path)))
    smile, frown, untracked = dialogue.utterances
    assert smile.visual_cue == "cheek raiser and lip corner puller (smile), strong"
    assert frown.visual_cue == "brow lowerer, slight"
    assert untracked.visual_cue is None and summary.skipped["no confident face frames"] == 1
    assert smile.metadata["action_units"] == {"AU06": 3.4, "AU12": 3.8}


def test_openface_strongest_first_and_blinks_ignored(tmp_path):
    path = write_openface_csv(tmp_path / "x.csv", seconds=1.0, active=[(0, 1, {4: 1.2, 9: 2.5, 10: 2.7, 45: 5.0})])
    text = openface.extract(path)
    assert text == "nose wrinkler and upper lip raiser (sneer), marked; brow lowerer, slight"


def test_openface_bad_files_name_the_problem(tmp_path):
    missing = write_openface_csv(tmp_path / "m.csv", seconds=0.2, drop_columns=["confidence"])
    with pytest.raises(openface.OpenFaceError, match=r"m.csv:1: missing columns confidence"):
        openface.read_openface(missing)
    broken = write_openface_csv(tmp_path / "b.csv", seconds=0.2)
    lines = broken.read_text().splitlines()
    lines[3] = lines[3].replace("0.98", "n/a", 1)
    broken.write_text("\n".join(lines))
    with pytest.raises(openface.OpenFaceError, match=r"b.csv:4: expected"):
        openface.read_openface(broken)


def test_cues_command_with_openface_and_a_bad_csv(tmp_path, capsys):
    write_openface_csv(tmp_path / "of" / "d1_utt0.csv", seconds=1.0, active=[(0, 1, {6: 2.5, 12: 2.5})])
    write_openface_csv(tmp_path / "of" / "d1_utt1.csv", seconds=1.0, drop_columns=["timestamp"])
    data, out = tmp_path / "d.jsonl", tmp_path / "o.jsonl"
    write_dialogues(data, [_dialogue(2)])
    args = ["cues", "--data", str(data), "--openface_dir", str(tmp_path / "of"), "--output", str(out)]
    assert main([*args, "--no-show_progress"]) == 2
    assert "d1_utt1.csv:1: missing columns timestamp" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--no-show_progress", "--on_error", "skip"]) == 0
    (dialogue,), _ = read_dialogues(out)
    assert dialogue.utterances[0].visual_cue == "cheek raiser and lip corner puller (smile), marked"


# --------------------------------------------------------------------------- options and build-data


def test_cue_options_are_checked_like_a_config_file():
    with pytest.raises(ConfigError, match="cues: unknown keys audio_folder"):
        cue_options({"audio_folder": "x"})
    with pytest.raises(ConfigError, match="cues: nothing to do"):
        cue_options({"reference": "corpus"})
    with pytest.raises(ConfigError, match="cues: reference: expected speaker | corpus"):
        cue_options({"audio_dir": "x", "reference": "everyone"})


def test_build_data_renders_cues_from_media_in_the_prompt(three_voices, tmp_path):
    from datasets import load_from_disk

    from instructerc.config import BuildDataConfig
    from instructerc.data_builders.build import build_dataset

    data, folder = three_voices
    write_openface_csv(tmp_path / "of" / "d1_utt2.csv", seconds=2.0, active=[(0, 2, {6: 3.5, 12: 3.5})])
    lines = [json.loads(line) for line in data.read_text().splitlines()]
    for row in lines:
        for utt in row["utterances"]:
            utt["label"] = "joy"
    data.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    config = BuildDataConfig(
        dataset="jsonl",
        data_dir=str(data),
        splits=["test"],
        label_set="meld",
        n_demos=0,
        output_dir=str(tmp_path / "built"),
        cues={"audio_dir": str(folder), "openface_dir": str(tmp_path / "of"), "on_error": "skip"},
        show_progress=False,
    )
    result = build_dataset(config)
    assert "3 audio, 1 visual" in result.summary()
    last = load_from_disk(config.output_dir)["test"][2]["prompt"][1]["content"]
    target = last.split("Target utterance:")[1]
    assert "loud" in target and "quiet" not in target
    assert "; visual: cheek raiser and lip corner puller (smile), strong]" in target
    assert (tmp_path / "built" / "cue_reference.json").is_file()
    info = json.loads((tmp_path / "built" / "build_info.json").read_text())
    assert "3 audio" in info["cues"]
