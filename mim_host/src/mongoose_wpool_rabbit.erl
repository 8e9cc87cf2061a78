%% @doc The test host's `mongoose_wpool_rabbit': only what the emulated
%% `mongoose_wpool' calls, the instrumentation of a rabbit pool.
%%
%% MongooseIM declares these events when it starts a rabbit pool (its
%% `mongoose_rabbit_worker' defines them); our `mod_event_pusher_rabbit' emits
%% them from the Rust pool's outcomes. Names, labels and metric types are
%% MongooseIM's: `wpool_global_rabbit_*' with `#{pool_tag}' for a global
%% pool, `wpool_rabbit_*' with `#{host_type, pool_tag}' for a host type's.
-module(mongoose_wpool_rabbit).

-export([instrumentation/2]).

-spec instrumentation(global | binary(), atom()) -> [mongoose_instrument:spec()].
instrumentation(global, Tag) ->
    specs(wpool_global_rabbit_connections, wpool_global_rabbit_messages_published,
          #{pool_tag => Tag});
instrumentation(HostType, Tag) ->
    specs(wpool_rabbit_connections, wpool_rabbit_messages_published,
          #{host_type => HostType, pool_tag => Tag}).

-spec specs(atom(), atom(), mongoose_instrument:labels()) -> [mongoose_instrument:spec()].
specs(ConnectionsEvent, PublishedEvent, Labels) ->
    [{ConnectionsEvent, Labels,
      #{metrics => #{active => counter, opened => spiral, closed => spiral,
                     failed => spiral}}},
     {PublishedEvent, Labels,
      #{metrics => #{count => spiral, failed => spiral, timeout => spiral,
                     time => histogram, size => histogram}}}].
