/* llayer.h -- built-in layers as C userdata (not installed).
 *
 * A layer kind is one nnL_layer_class: its settings are a typed C struct
 * (forward reads them directly, no name lookups), its parameters, buffers
 * and child layers sit in numbered slots, and a table of field descriptors
 * lets Lua read the settings (layer.in_features) and prints them. The
 * userdata answers the primitives of the module protocol (_entries,
 * _set_training, _typename); the Lua half installs the rest of nn.Module's
 * methods (state_dict, save, ...) into the shared method table, so a C
 * layer and a Lua Module are used the same way. */
#ifndef LLAYER_H
#define LLAYER_H

#include <stddef.h>

#include "lnnlua.h"

#define NNL_LAYER "nnlua.Layer"

typedef enum {
    NNL_F_INT, NNL_F_NUM, NNL_F_BOOL, NNL_F_PAIR, NNL_F_CHOICE, NNL_F_SHAPE
} nnL_field_type;

#define NNL_LIST_MAX 16 /* longest list setting (modalities) and list of children */
typedef struct { int n; int64_t v[NNL_LIST_MAX]; } nnL_shape;

/* A readable setting: int64_t (INT), double (NUM), int (BOOL), int[2]
 * (PAIR, printed "(3, 3)"), int index into choices (CHOICE, a string),
 * nnL_shape (SHAPE, a table, printed "(4,)"). */
typedef struct {
    const char *name;
    nnL_field_type type;
    size_t offset;
    const char *const *choices;
} nnL_field;

/* a field descriptor for member m of settings struct s */
#define NNL_FIELD(type, s, m) {#m, type, offsetof(s, m), NULL}
#define NNL_END_FIELDS {NULL, 0, 0, NULL}

typedef enum { NNL_PARAM, NNL_BUFFER, NNL_CHILD } nnL_slot_kind;

typedef struct {
    const char *name;
    nnL_slot_kind kind;
} nnL_slot;

typedef struct nnL_layer nnL_layer;

typedef struct {
    const char *name;          /* "Linear" */
    size_t size;               /* of the settings struct */
    const nnL_slot *slots;     /* {NULL} ends; a slot may stay empty (no bias) */
    const nnL_field *fields;   /* {NULL} ends; printed in this order */
    const char *const *options; /* accepted keys of the options table */
    int options_arg;           /* the constructor's options argument */
    /* reads the constructor's arguments (layer userdata on top), fills
     * the settings and the slots */
    void (*build)(lua_State *L, nnL_layer *l);
    /* the layer at 1, inputs from 2; returns the number of results */
    int (*forward)(lua_State *L, nnL_layer *l);
    const luaL_Reg *methods;   /* the kind's own methods, or NULL */
} nnL_layer_class;

struct nnL_layer {
    const nnL_layer_class *cls;
    int training;
    int hooked;  /* forward hooks registered (the Lua half runs them) */
    /* followed by the settings (cls->size bytes), aligned as Lua aligns
     * userdata (8 bytes: enough for the int64_t and double they hold) */
    _Alignas(8) unsigned char cfg[];
};

#define NNL_CFG(l, type) ((type *)(void *)(l)->cfg)

/* Constructor: checks the options, creates the userdata and calls build. */
int nnL_new_layer(lua_State *L, const nnL_layer_class *cls);
nnL_layer *nnL_checklayer(lua_State *L, int arg);
/* Fills slot i of the layer on top of the stack with t (stolen; a
 * parameter is made to require grad) or with the value on top (children). */
void nnL_set_param(lua_State *L, int slot, nn_tensor *t);
void nnL_set_child(lua_State *L, int slot);
/* The tensor in slot i of the layer at idx (NULL when the slot is empty),
 * left on the stack for the rest of the call. */
nn_tensor *nnL_slot_tensor(lua_State *L, int idx, int slot);
/* The child layer in slot i, pushed and left on the stack. */
nnL_layer *nnL_slot_layer(lua_State *L, int idx, int slot);
/* U(-bound, bound) of the given shape, from the state's generator */
nn_tensor *nnL_uniform(lua_State *L, int ndim, const int64_t *shape, double bound);
int64_t nnL_checkpositive(lua_State *L, int arg, const char *what);
/* t kept on the Lua stack (collected if a later step of a forward raises);
 * raises the engine's error when t is NULL */
nn_tensor *nnL_keep(lua_State *L, nn_tensor *t);

/* nn.<name>(...) for each class (NULL ends), into the table on top */
void nnL_register_layers(lua_State *L, const nnL_layer_class *const *classes);

/* The metatable, the shared method table (nn._layer_methods) and
 * nn._set_forward_observer, into the table on top. */
void nnL_open_layer_protocol(lua_State *L);
void nnL_open_conv_layers(lua_State *L);
void nnL_open_attention_layers(lua_State *L);
void nnL_open_fusion_layers(lua_State *L);
void nnL_open_norm_layers(lua_State *L); /* also nn.batch_norm, nn.group_norm */
void nnL_open_act_layers(lua_State *L);  /* also nn.prelu, nn.glu */
void nnL_open_rnn_layers(lua_State *L);
void nnL_open_conv_family(lua_State *L);
/* Conv2d's and ConvTranspose2d's (in, out, kernel[, {stride, padding,
 * dilation, groups, bias}]) at 1..4 */
void nnL_conv_args(lua_State *L, int64_t *in, int64_t *out, int *kernel, int *stride, int *padding,
                   int *dilation, int64_t *groups, int *bias);
void nnL_open_rearrange(lua_State *L);
void nnL_open_embedding_bag(lua_State *L); /* pad, flip, ..., interpolate, Upsample */ /* Conv1d, ConvTranspose2d and their functions */

/* Builds a layer of cls from the nargs arguments on top (replaced by it),
 * as the Lua constructor would: options checked, layer left on top. */
void nnL_construct(lua_State *L, const nnL_layer_class *cls, int nargs);
extern const nnL_layer_class nnL_linear_class;
/* A list of up to NNL_LIST_MAX child layers named 0, 1, ... (printed and
 * typed as PyTorch's ModuleList; list[i] counts from 1): n children are
 * added with nnL_set_child(L, i) on the list nnL_construct made from n. */
extern const nnL_layer_class nnL_list_class;

#endif
