"""Product content pushed from Business Central to storefront channels (pure rules, no I/O).

``source`` holds what the ERP gives (item, content, categories); ``product.normalise`` joins and
checks them into the canonical ``Product`` (or says why not); ``listing`` builds one channel's
view and its content hash; ``planning`` turns "what the channel should have" versus "what it
acknowledged last" into batched upserts and deletes; ``signing`` authenticates the webhook.
"""
