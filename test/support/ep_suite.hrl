%% What the product's event suites share: common_test's and assert's macros,
%% MongooseIM's records and the event records, the two users of the scenarios,
%% and how fast a hook that only enqueues must return.
-include_lib("common_test/include/ct.hrl").
-include_lib("stdlib/include/assert.hrl").
-include("jlib.hrl").
-include("mod_event_pusher_events.hrl").

-define(ALICE, <<"alice@localhost/phone">>).
-define(BOB, <<"bob@localhost/laptop">>).
%% A hook that only enqueues returns in microseconds; a wait for a backend
%% takes a round trip at least, and an outage seconds. Generous on purpose.
-define(AT_ONCE_US, 100000).
