%% @doc The test host's `mongoose_packet_handler': what a route delivers to
%% (`Module:process_packet(Acc, From, To, El, Extra)'), as in MongooseIM.
-module(mongoose_packet_handler).

-export([new/1, new/2, process/5, add_extra/2, module/1, extra/1]).

-record(packet_handler, {handler :: process_packet(), extra :: extra()}).

-type extra() :: map().
-type process_packet() :: fun((mongoose_acc:t(), jid:jid(), jid:jid(), exml:element(), extra()) ->
                                     mongoose_acc:t()).
-opaque t() :: #packet_handler{}.
-export_type([t/0, extra/0]).

-callback process_packet(Acc :: mongoose_acc:t(), From :: jid:jid(), To :: jid:jid(),
                         El :: exml:element(), Extra :: extra()) -> mongoose_acc:t().

-spec new(module()) -> t().
new(Module) ->
    new(Module, #{}).

-spec new(module(), extra()) -> t().
new(Module, Extra) when is_atom(Module), is_map(Extra) ->
    #packet_handler{handler = fun Module:process_packet/5, extra = Extra}.

-spec process(t(), mongoose_acc:t(), jid:jid(), jid:jid(), exml:element()) -> mongoose_acc:t().
process(#packet_handler{handler = Fun, extra = Extra}, Acc, From, To, El) ->
    Fun(Acc, From, To, El, Extra).

%% @doc Keys already in the handler's extra win.
-spec add_extra(t(), extra()) -> t().
add_extra(#packet_handler{extra = Old} = Handler, Extra) ->
    Handler#packet_handler{extra = maps:merge(Extra, Old)}.

-spec module(t()) -> module().
module(#packet_handler{handler = Fun}) ->
    {module, Module} = erlang:fun_info(Fun, module),
    Module.

-spec extra(t()) -> extra().
extra(#packet_handler{extra = Extra}) ->
    Extra.
