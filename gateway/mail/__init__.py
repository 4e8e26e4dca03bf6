"""Reading and writing mail, with nothing but the standard library and the mail libraries.

This package owns everything about a message itself: parsing it once into a `ParsedMail`
(`parse`, within the caps of `limits`), what it is (`classify`, with the bounce readers of
`bounces`), the new text of a reply (`quotes` and its helpers) and the mail we send
(`compose`). Apart from `known` (the text of mail we sent, read from the store: the pipeline
stages' module), it imports nothing from the rest of `gateway` but `gateway.clock`.
"""
