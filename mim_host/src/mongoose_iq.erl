%% @doc The test host's `mongoose_iq': the IQ of an accumulator, parsed once
%% and cached under the `iq' namespace (`record', `xmlns', `command', keyed by
%% the stanza's ref), as MongooseIM does.
-module(mongoose_iq).

-export([info/1, xmlns/1, command/1, update_acc_info/1, iq_to_sub_el/1, empty_result_iq/1]).

-include("jlib.hrl").

-spec iq_to_sub_el(jlib:iq()) -> [exml:element()] | exml:element().
iq_to_sub_el(#iq{sub_el = SubEl}) ->
    SubEl.

-spec empty_result_iq(jlib:iq()) -> jlib:iq().
empty_result_iq(IQ) ->
    IQ#iq{type = result, sub_el = []}.

%% @doc Parses the accumulator's element unless the cache is for this stanza.
-spec update_acc_info(mongoose_acc:t()) -> mongoose_acc:t().
update_acc_info(Acc) ->
    Ref = mongoose_acc:stanza_ref(Acc),
    case mongoose_acc:get(iq, ref, undefined, Acc) of
        Ref when Ref =/= undefined ->
            Acc;
        _ ->
            IQ = jlib:iq_query_or_response_info(mongoose_acc:element(Acc)),
            {XMLNS, Command} = case IQ of
                                   #iq{xmlns = NS, sub_el = SubEl} -> {NS, command_of(SubEl)};
                                   _ -> {undefined, undefined}
                               end,
            mongoose_acc:set(iq, [{record, IQ}, {xmlns, XMLNS}, {command, Command},
                                  {ref, Ref}], Acc)
    end.

-spec info(mongoose_acc:t()) -> {invalid | not_iq | jlib:iq(), mongoose_acc:t()}.
info(Acc) ->
    get_field(record, Acc).

-spec xmlns(mongoose_acc:t()) -> {binary() | undefined, mongoose_acc:t()}.
xmlns(Acc) ->
    get_field(xmlns, Acc).

-spec command(mongoose_acc:t()) -> {binary() | undefined, mongoose_acc:t()}.
command(Acc) ->
    get_field(command, Acc).

-spec get_field(record | xmlns | command, mongoose_acc:t()) -> {term(), mongoose_acc:t()}.
get_field(Field, Acc) ->
    Acc1 = update_acc_info(Acc),
    {mongoose_acc:get(iq, Field, Acc1), Acc1}.

-spec command_of([exml:element()] | exml:element()) -> binary() | undefined.
command_of(#xmlel{name = Name}) -> Name;
command_of([#xmlel{name = Name} | _]) -> Name;
command_of(_) -> undefined.
