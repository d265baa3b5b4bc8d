"""Textualized cues: how something is said (prosody, from audio) and shown (facial action units, from
OpenFace), turned into short texts that the prompt templates render next to each utterance.

    audio.py      prosodic features with Praat (praat-parselmouth)
    reference.py  quantile levels relative to the speaker or the corpus
    wording.py    levels -> "loud, high-pitched speech with wide pitch variation, fast"
    openface.py   OpenFace 2.x CSVs -> "cheek raiser and lip corner puller (smile), strong"
    media.py      which file (and span) belongs to which utterance
    apply.py      fills audio_cue / visual_cue of canonical dialogues (`instructerc cues`, build-data's `cues:`)
"""
