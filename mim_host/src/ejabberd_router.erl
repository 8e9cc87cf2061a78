%% @doc The test host's `ejabberd_router': the routing API of MongooseIM
%% before `mongoose_router:route/1' replaced it (kept for callers written
%% against it). `route/3' builds an accumulator for a bare element.
-module(ejabberd_router).

-export([route/3, route/4]).

-include("jlib.hrl").
-include("mongoose.hrl").

-spec route(jid:jid(), jid:jid(), mongoose_acc:t() | exml:element()) -> mongoose_acc:t().
route(From, To, #xmlel{} = El) ->
    HostType = case mongoose_domain_api:get_domain_host_type(From#jid.lserver) of
                   {ok, HT} -> HT;
                   {error, not_found} -> undefined
               end,
    Acc = mongoose_acc:new(#{location => ?LOCATION, lserver => From#jid.lserver,
                             host_type => HostType, element => El,
                             from_jid => From, to_jid => To}),
    mongoose_router:route(Acc);
route(From, To, Acc) ->
    route(From, To, Acc, mongoose_acc:element(Acc)).

-spec route(jid:jid(), jid:jid(), mongoose_acc:t(), exml:element()) -> mongoose_acc:t().
route(From, To, Acc, El) ->
    mongoose_router:route(mongoose_acc:update(From, To, El, Acc)).
