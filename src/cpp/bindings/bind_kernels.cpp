// Built-in loss kernels: MLPs, low-rank matrix problems and the toy landscapes.
#include "../problems/matrix_sensing.hpp"
#include "../problems/mlp.hpp"
#include "../problems/toys.hpp"
#include "common.hpp"

namespace eosfast::bindings {

namespace {
py::list mlp_layer_sizes(const MLP& mlp)
{
    py::list sizes;
    sizes.append(mlp.input_dim());
    for (const MLPLayer& L : mlp.layers()) sizes.append(L.out);
    return sizes;
}
}  // namespace

void init_kernels(py::module_& m)
{
    // The names the MLP accepts, declared once in C++ (activations.hpp, mlp_heads.hpp).
    m.attr("ACTIVATIONS") =
        py::tuple(py::cast(std::vector<std::string>(kActivationNames.begin(), kActivationNames.end())));
    m.attr("MLP_LOSSES") =
        py::tuple(py::cast(std::vector<std::string>(kMLPLossNames.begin(), kMLPLossNames.end())));
    py::class_<MLP, Problem, std::shared_ptr<MLP>>(m, "MLP", py::module_local())
        .def_static("regression", &MLP::regression, py::arg("X"), py::arg("Y"), py::arg("hidden"),
                    py::arg("activation"), py::arg("bias"), py::arg("cache_bytes"))
        .def_static("classification", &MLP::classification, py::arg("X"), py::arg("labels"),
                    py::arg("num_classes"), py::arg("hidden"), py::arg("activation"), py::arg("bias"),
                    py::arg("cache_bytes"))
        .def_property_readonly("layer_sizes", &mlp_layer_sizes)
        .def_property_readonly("activation", [](const MLP& p) { return activation_name(p.activation()); })
        .def_property_readonly("loss_name", [](const MLP& p) { return mlp_loss_name(p.loss_kind()); })
        .def_property_readonly("bias", &MLP::has_bias)
        .def_property_readonly("n_samples", &MLP::n_samples)
        .def_property_readonly("chunk_state_bytes", &MLP::chunk_state_bytes)
        .def("predict", [](const MLP& p, ConstVecRef x,
                           ConstRowMatRef X) { return call_released([&] { return p.predict(x, X); }); })
        .def("predict_training",
             [](const MLP& p, ConstVecRef x) { return call_released([&] { return p.predict(x); }); })
        .def_property_readonly("targets", [](const MLP& p) { return RowMatrix(p.targets().transpose()); })
        .def("output_jacobian",
             [](const MLP& p, ConstVecRef x) { return call_released([&] { return p.output_jacobian(x); }); });

    py::class_<MLPHessian, HessianOperator, std::shared_ptr<MLPHessian>>(m, "MLPHessian", py::module_local())
        .def_property_readonly("cached_chunks", &MLPHessian::cached_chunks);

    py::class_<MatrixSensing, Problem, std::shared_ptr<MatrixSensing>>(m, "MatrixSensing", py::module_local())
        .def(py::init<Eigen::Ref<const RowMatrix>, Vector, Index, Index, Index>(), py::arg("A"), py::arg("y"),
             py::arg("d1"), py::arg("d2"), py::arg("rank"))
        .def_property_readonly("shape",
                               [](const MatrixSensing& p) { return py::make_tuple(p.rows(), p.cols()); })
        .def_property_readonly("rank", &MatrixSensing::rank)
        .def_property_readonly("measurements", &MatrixSensing::measurements)
        .def_property_readonly("y", &MatrixSensing::targets);
    py::class_<MatrixFactorization, Problem, std::shared_ptr<MatrixFactorization>>(m, "MatrixFactorization",
                                                                                   py::module_local())
        .def(py::init<Eigen::Ref<const RowMatrix>, Index>(), py::arg("M"), py::arg("rank"))
        .def_property_readonly(
            "shape", [](const MatrixFactorization& p) { return py::make_tuple(p.rows(), p.cols()); })
        .def_property_readonly("rank", &MatrixFactorization::rank)
        .def_property_readonly("M", &MatrixFactorization::target);
    py::class_<LowRankHessian<detail::SensingMeasurement>, HessianOperator,
               std::shared_ptr<LowRankHessian<detail::SensingMeasurement>>>(m, "MatrixSensingHessian",
                                                                            py::module_local());
    py::class_<LowRankHessian<detail::IdentityMeasurement>, HessianOperator,
               std::shared_ptr<LowRankHessian<detail::IdentityMeasurement>>>(m, "MatrixFactorizationHessian",
                                                                             py::module_local());

    py::class_<ScalarProduct, Problem, std::shared_ptr<ScalarProduct>>(m, "ScalarProduct", py::module_local())
        .def(py::init<Index>(), py::arg("D"));
    py::class_<Valley2D, Problem, std::shared_ptr<Valley2D>>(m, "Valley2D", py::module_local())
        .def(py::init<>());
    py::class_<TwoNormal, Problem, std::shared_ptr<TwoNormal>>(m, "TwoNormal", py::module_local())
        .def(py::init<>());
    py::class_<Circle, Problem, std::shared_ptr<Circle>>(m, "Circle", py::module_local()).def(py::init<>());
}

}  // namespace eosfast::bindings
