"""The English corpus the tiny tokenizer is trained on, and the tiny model's chat template."""

from __future__ import annotations

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog does not move.
This is a short document about the weather, the city and the people who live in it.
It was a cold morning in the city. The sky was grey and the wind was strong.
People walked to work with their hands in their pockets and their heads down.
By the afternoon the sun came out, and the streets were full of people again.
The report describes the results of a study that was done over three years.
The main point of the report is that small changes can make a large difference.
In the first section, the authors explain the question and the method they used.
In the second section, they show the results in a table and in a figure.
In the third section, they discuss what the results mean and what should be done next.
The answer to the question is in the second section of the text, on page four.
What is the main point of the document? Who wrote it, and when was it written?
Why did the authors choose this method? How many people took part in the study?
Please answer the question in one sentence. Please summarise the passage in two sentences.
Describe the image. Describe the video. Transcribe the audio. What does the speaker say?
The speaker talks about the history of the river and the old bridge near the market.
The video shows a man and a woman walking along the river at night.
In the first minute, a car stops near the bridge and a child gets out.
The audio is clear, but there is some noise from the road in the background.
A good answer cites the page and quotes the words from the document.
The model reads the whole document once and then answers every question about it.
If the answer is not in the document, say that the document does not say.
Music played from a small radio in the kitchen while the water was boiling.
She opened the window, looked at the garden, and decided to go for a walk.
The children were playing in the park, and their parents were talking on a bench.
He wrote a letter to his friend and told her about his new job and his new house.
The meeting will start at nine in the morning and will end before noon.
There are four chapters in the book, and each chapter has a short summary at the end.
The company sold more products this year than last year, and its costs went down.
Time, money, work, life, world, year, day, night, house, school, water, story, number.
Good, new, first, last, long, great, little, own, other, old, right, big, high, small.
Say, make, go, know, take, see, come, think, look, want, give, use, find, tell, ask.
The end of the story is happy: everyone goes home, and the rain finally stops.
"""

CHAT_TEMPLATE = """\
{{ bos_token }}{% for message in messages %}\
<|turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}
{% if message['content'] is string %}{{ message['content'] | trim }}\
{% else %}{% for part in message['content'] %}\
{% if part['type'] == 'image' %}<|image|>\
{% elif part['type'] == 'audio' %}<|audio|>\
{% elif part['type'] == 'video' %}<|video|>\
{% elif part['type'] == 'text' %}{{ part['text'] | trim }}{% endif %}\
{% endfor %}{% endif %}<turn|>
{% endfor %}{% if add_generation_prompt %}<|turn>model
{% endif %}"""
"""A simplified Gemma 4 turn format, rendering content as the real Gemma 4 template does.

Content is a string or a list of typed parts (what mlx-vlm's `apply_chat_template` builds for
Gemma 4 and what `Engine.render` builds for audio): `{"type": "audio"}` renders the processor's
audio token `<|audio|>` (likewise image and video), text is trimmed, parts are concatenated in
order with nothing between them, so audio parts placed first come first in the prompt."""
