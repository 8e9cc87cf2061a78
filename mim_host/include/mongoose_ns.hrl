%% XML namespaces used by the event pusher modules (MongooseIM's macro names).
-ifndef(MONGOOSEIM_NS_HRL).
-define(MONGOOSEIM_NS_HRL, true).

-define(NS_PUSH, <<"urn:xmpp:push:0">>).
-define(NS_PUBSUB, <<"http://jabber.org/protocol/pubsub">>).
-define(NS_PUBSUB_PUB_OPTIONS, <<"http://jabber.org/protocol/pubsub#publish-options">>).
-define(NS_HINTS, <<"urn:xmpp:hints">>).
-define(NS_STANZAS, <<"urn:ietf:params:xml:ns:xmpp-stanzas">>).
-define(NS_XDATA, <<"jabber:x:data">>).

-endif.
